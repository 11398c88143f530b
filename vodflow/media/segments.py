"""Short first segments on disk: the hls muxer's parts joined into a rung's segments (which: from
`packaging.hls.regrouped`), by the live publisher while the encode runs and once more when it has finished.

Each segment is written once, under a temporary name renamed into place, so one that exists is whole; a
single part is renamed, a group copied end to end; the parts go once their segment is there. Two joiners at
once (the publisher's last look and the end's) make the same bytes, and the later one finds it done.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from vodflow.packaging.hls import Join, regrouped


def settle_rung(rung: Path, playlist: str) -> str:
    """`playlist` (ffmpeg's, of the rung in folder `rung`) as the rung publishes it, its segments made from
    the parts it lists; unchanged without parts. ValueError for a playlist `regrouped` refuses, OSError when
    a part is missing and its segment was not made."""
    text, joins = regrouped(playlist)
    for join in joins:
        join_parts(rung, join)
    return text


def join_parts(rung: Path, join: Join) -> None:
    """Make the segment `join.segment` in `rung` from its parts (nothing when it exists), then remove them."""
    segment = rung / join.segment
    if segment.exists():
        return
    temporary = rung / f".{join.segment}.{os.getpid()}-{threading.get_ident()}.tmp"
    try:
        if len(join.parts) == 1:
            os.replace(rung / join.parts[0], segment)
            return
        with temporary.open("wb") as out:
            for part in join.parts:
                with (rung / part).open("rb") as data:
                    shutil.copyfileobj(data, out, 1 << 20)
        os.replace(temporary, segment)
    except FileNotFoundError:
        if not segment.exists():  # else another joiner made it, and took the parts
            raise
    finally:
        temporary.unlink(missing_ok=True)
    for part in join.parts:
        (rung / part).unlink(missing_ok=True)
