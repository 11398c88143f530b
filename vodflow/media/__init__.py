"""ffmpeg and ffprobe: what inputs may be, probing, pure command builders, chunk plans, the runner."""
