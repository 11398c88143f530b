"""ffmpeg and ffprobe measured from outside vodflow: wrappers, first on PATH, that run the real binaries
under `/usr/bin/time`, which appends each process's user and system CPU seconds to a log."""

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
        fmt = f"%U %S {name}"
        script.write_text(
            "#!/bin/sh\n"
            f"exec /usr/bin/time -a -o {shlex.quote(str(log))} -f {shlex.quote(fmt)} "
            f'{shlex.quote(real)} "$@"\n'
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
