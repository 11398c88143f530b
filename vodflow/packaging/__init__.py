"""The packaging stage's pure half: what turns encoded streams into deliverables, as text and boxes (HLS
playlists `hls`, CMAF/DASH manifests and the dash muxer's options `cmaf`, I-frame playlists `iframes` over an
ISO-BMFF reader `fmp4`, storyboard layouts and tracks `storyboard`, WebVTT timing `webvtt`). The ffmpeg
graphs that run it are `media.package` (a chunked job's copy-only packaging) and `media.commands` (the
one-process encode, both stages in one graph); nothing here runs a process."""
