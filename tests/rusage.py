"""ffmpeg and ffprobe measured from outside vodflow: wrappers, first on PATH, that run the real binaries
under bash's `time`, which appends each process's user and system CPU seconds to a log, in milliseconds
(`/usr/bin/time` truncates to hundredths: over a job's 10-20 short processes that alone lost up to 10%)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

LINE = re.compile(r"^(\d+\.\d+) (\d+\.\d+) (ffmpeg|ffprobe)$")


def timed_binaries(folder: Path) -> Path:
    """Write `ffmpeg` and `ffprobe` wrappers into `folder` (put it first on PATH); returns their log."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "rusage.log"
    for name in ("ffmpeg", "ffprobe"):
        real = shutil.which(name)
        assert real is not None and not Path(real).is_relative_to(folder), f"no real {name} on PATH"
        script = folder / name
        script.write_text(  # the real one's stderr stays the caller's (fd 3); `time`'s line goes to the log
            "#!/bin/bash\n"
            f"TIMEFORMAT={shlex.quote(f'%3U %3S {name}')}\n"
            "exec 3>&2\n"
            f'{{ time {shlex.quote(real)} "$@" 2>&3 3>&- ; }} 2>>{shlex.quote(str(log))}\n'
        )
        script.chmod(0o755)
    return log


def path_with(folder: Path) -> str:
    """PATH with `folder` first."""
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def logged_cpu(log: Path) -> list[float]:
    """Each logged process's user + system CPU seconds, in the order they ended."""
    if not log.exists():
        return []
    found = (LINE.match(line.strip()) for line in log.read_text().splitlines())
    return [float(m[1]) + float(m[2]) for m in found if m]
