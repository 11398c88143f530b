"""HLS AES-128 (RFC 8216 4.3.2.4, 5.2), planned and applied purely: no I/O, keys given by the caller.

Each media segment (MPEG-TS, or fMP4 after its clear `EXT-X-MAP` init section) is encrypted whole with
AES-128-CBC and PKCS7 padding. Its IV is its media sequence number as a 128-bit big-endian integer, the
RFC's default when `EXT-X-KEY` names no IV, so no IV travels in a playlist and each segment has its own. A
ladder's keys rotate every `rotate_every` segments of each rung: period `n` (segments `n * rotate_every`
onwards, counted from the playlist's first) uses key `n`, announced by an `EXT-X-KEY` line before its first
segment. The key line's URI is vodflow's key endpoint, never a published object (`key_uri`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from urllib.parse import quote

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
BLOCK_BITS = 128
MEDIA_SEQUENCE = "#EXT-X-MEDIA-SEQUENCE:"
EXTINF = "#EXTINF:"
KEY_TAG = "#EXT-X-KEY:"
_KID = re.compile(r"^[0-9a-f]{32}$")


def key_uri(base_url: str, job_id: str, kid: str) -> str:
    """`{base}/v1/keys/{job id}/{kid}`: where a player fetches the key `kid` (32 lower-case hex digits) of a
    job; ValueError for a base that is not http(s) or a malformed kid."""
    base = base_url.strip().rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise ValueError("the key endpoint's base URL must be http:// or https://")
    if not _KID.match(kid):
        raise ValueError("a key id is 32 lower-case hex digits")
    return f"{base}/v1/keys/{quote(job_id, safe='')}/{kid}"


def sequence_iv(sequence: int) -> bytes:
    """The IV of the segment with media sequence number `sequence` (RFC 8216: its big-endian 128 bits)."""
    if sequence < 0:
        raise ValueError("a media sequence number is not negative")
    return sequence.to_bytes(KEY_BYTES, "big")


def encrypt_segment(data: bytes, key: bytes, iv: bytes) -> bytes:
    """`data` encrypted whole with AES-128-CBC and PKCS7 padding."""
    _check(key, iv)
    padder = padding.PKCS7(BLOCK_BITS).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_segment(data: bytes, key: bytes, iv: bytes) -> bytes:
    """What `encrypt_segment` encrypted; ValueError when `data` is not a padded AES-128-CBC segment."""
    _check(key, iv)
    if not data or len(data) % KEY_BYTES:
        raise ValueError("an AES-128 segment is a whole number of 16-byte blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK_BITS).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _check(key: bytes, iv: bytes) -> None:
    if len(key) != KEY_BYTES or len(iv) != KEY_BYTES:
        raise ValueError("AES-128 takes a 16-byte key and a 16-byte IV")


def media_sequence(playlist: str) -> int:
    """The playlist's `EXT-X-MEDIA-SEQUENCE` (0 when it has none); ValueError when unreadable."""
    for line in playlist.splitlines():
        if line.startswith(MEDIA_SEQUENCE):
            value = line[len(MEDIA_SEQUENCE) :].strip()
            if not value.isdigit():
                raise ValueError(f"unreadable media sequence: {value[:20]!r}")
            return int(value)
    return 0


def segment_uris(playlist: str) -> list[str]:
    """The media segment URIs of a media playlist, in order (each the first URI line after an EXTINF)."""
    segments, expecting = [], False
    for line in playlist.splitlines():
        line = line.strip()
        if line.startswith(EXTINF):
            expecting = True
        elif line and not line.startswith("#") and expecting:
            segments.append(line)
            expecting = False
    return segments


def periods(segments: int, rotate_every: int | None) -> int:
    """How many keys a rung of `segments` segments uses (one without rotation; at least one)."""
    if rotate_every is None or segments == 0:
        return 1
    if rotate_every < 1:
        raise ValueError("rotateEvery is at least 1")
    return math.ceil(segments / rotate_every)


def keyed_playlist(playlist: str, uris: Sequence[str], rotate_every: int | None) -> str:
    """A media playlist with an `EXT-X-KEY:METHOD=AES-128` line before the first segment of each key period
    (`uris[n]` the URI of period `n`'s key); the IVs follow from the media sequence numbers. Every other line
    is kept; an `EXT-X-MAP` before the first segment stays clear. ValueError when the playlist already has
    keys, or `uris` is not one per period."""
    if any(line.startswith(KEY_TAG) for line in playlist.splitlines()):
        raise ValueError("the playlist is encrypted already")
    count = len(segment_uris(playlist))
    if len(uris) != periods(count, rotate_every):
        raise ValueError(f"{len(uris)} key URI(s) for {periods(count, rotate_every)} key period(s)")
    for uri in uris:
        if any(c in uri for c in '"\r\n'):
            raise ValueError("a key URI may not hold a quote or a line break")
    every = rotate_every or max(count, 1)
    out: list[str] = []
    index = 0
    for line in playlist.split("\n"):
        if line.startswith(EXTINF):
            if index % every == 0:
                out.append(f'{KEY_TAG}METHOD=AES-128,URI="{uris[index // every]}"')
            index += 1
        out.append(line)
    return "\n".join(out)
