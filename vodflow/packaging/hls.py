"""Reading and rewriting the HLS media playlists ffmpeg writes (pure text functions, no I/O).

While a job encodes, ffmpeg writes EVENT playlists (`#EXT-X-PLAYLIST-TYPE:EVENT`): each lists the segments
finished so far, and the last one written ends with `#EXT-X-ENDLIST`. `as_vod` turns the final one into the
VOD playlist a finished ladder publishes, byte for byte what ffmpeg writes with `-hls_playlist_type vod`.
"""

from __future__ import annotations

EVENT_TYPE = "#EXT-X-PLAYLIST-TYPE:EVENT"
VOD_TYPE = "#EXT-X-PLAYLIST-TYPE:VOD"


def finished_segments(playlist: str) -> list[str]:
    """The segment URIs a media playlist lists, in order; a last line without its newline (a playlist caught
    mid-write) does not count."""
    complete = playlist[: playlist.rfind("\n") + 1]
    segments = []
    expecting_uri = False
    for line in complete.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            expecting_uri = True
        elif line and not line.startswith("#") and expecting_uri:
            segments.append(line)
            expecting_uri = False
    return segments


def is_event_playlist(playlist: str) -> bool:
    return EVENT_TYPE in playlist.splitlines()


def as_vod(playlist: str) -> str:
    """An EVENT playlist as a VOD one (its type line changed, nothing else); ValueError if it is not an
    ended EVENT playlist."""
    lines = playlist.split("\n")
    if EVENT_TYPE not in lines or "#EXT-X-ENDLIST" not in (line.strip() for line in lines):
        raise ValueError("not a finished EVENT playlist")
    return "\n".join(VOD_TYPE if line == EVENT_TYPE else line for line in lines)
