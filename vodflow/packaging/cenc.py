"""Common Encryption (ISO/IEC 23001-7 `cenc`, AES-CTR) of CMAF ladders with ClearKey, built purely: no I/O.

Shaka Packager encrypts: one run per media segment of a rung (its clear init segment and that segment as the
input), so every encrypted segment keeps the clear one's name, timing and boundaries, and the DASH manifest
and HLS playlists the `dash` muxer wrote stay valid (a whole-rung run would cut audio segments elsewhere).
What Shaka writes is per-sample IVs and subsample maps (`senc`, `saiz`, `saio`) in every fragment, `tenc`
with the key id and a W3C common-system `pssh` (what ClearKey reads) in the init segment. The manifests get
the signalling here: `ContentProtection` elements in the MPD (`with_content_protection`) and an
`EXT-X-KEY` line in each HLS media playlist (`cenc_playlist`). The ClearKey license (`clearkey_license`) is
what vodflow's license endpoint answers with.

Keys reach Shaka on its command line (`packager_args`); `redacted` is what may be logged of it.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from urllib.parse import quote

KEY_BYTES = 16
MP4_PROTECTION = "urn:mpeg:dash:mp4protection:2011"
CLEARKEY_SYSTEM = "e2719d58-a985-b3c9-781a-b030af78d30e"  # DASH-IF's ClearKey system id
COMMON_SYSTEM = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"  # W3C common PSSH (EME ClearKey's init data)
CLEARKEY_KEYFORMAT = "org.w3.clearkey"  # the EME key system, as hls.js names ClearKey in KEYFORMAT
CENC_NS = "urn:mpeg:cenc:2013"
CLEARKEY_NS = "http://dashif.org/guidelines/clearKey"  # DASH-IF IOP's ClearKey `Laurl`
SEGMENT_OUT = "segment-$Number$.m4s"  # Shaka's segment_template in its own output folder
FIRST_SEGMENT_OUT = "segment-1.m4s"
INIT_OUT = "init.m4s"
_KID = re.compile(r"^[0-9a-f]{32}$")
_KEY_ARG = re.compile(r"(key=)[0-9a-fA-F]+")


def clearkey_license_url(base_url: str, job_id: str) -> str:
    """`{base}/v1/clearkey/{job id}`: where a player's EME ClearKey session asks for the job's keys;
    ValueError for a base that is not http(s)."""
    base = base_url.strip().rstrip("/")
    if not base.lower().startswith(("http://", "https://")):
        raise ValueError("the license endpoint's base URL must be http:// or https://")
    return f"{base}/v1/clearkey/{quote(job_id, safe='')}"


SCHEMES = ("cenc", "cbcs")


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError("the protection scheme is cenc or cbcs")


def _check(kid: bytes, key: bytes | None = None) -> None:
    if len(kid) != KEY_BYTES or (key is not None and len(key) != KEY_BYTES):
        raise ValueError("a cenc key and its id are 16 bytes each")


def packager_args(
    packager: str,
    source: str,
    out_dir: str,
    stream: str,
    kid: bytes,
    key: bytes,
    scheme: str = "cenc",
    iv: bytes | None = None,
) -> list[str]:
    """Shaka Packager's command line encrypting `source` (a clear init segment followed by one media
    segment) into `out_dir/init.m4s` and `out_dir/segment-1.m4s`: `scheme` (`cenc` or `cbcs`) with the raw
    key, every sample encrypted (no clear lead), a common-system `pssh`, one segment (no re-cutting).
    `stream` is `video` or `audio`. `iv`: `cbcs` only, and required there: the ladder's constant IV (16
    bytes), the same in every run, since a `cbcs` init segment's `tenc` holds it for every fragment and only
    the first run's init segment is kept; `cenc` runs draw their own random per-sample IVs (`senc`), which
    must not repeat under one key. The key is on the line: log only `redacted(args)`."""
    _check(kid, key)
    if stream not in ("video", "audio"):
        raise ValueError("stream is video or audio")
    _check_scheme(scheme)
    if (scheme == "cbcs") != (iv is not None) or (iv is not None and len(iv) != KEY_BYTES):
        raise ValueError("cbcs takes a 16-byte constant IV, cenc none (its IVs are per sample)")
    out = out_dir.rstrip("/")
    if "," in source or "," in out:
        raise ValueError("a packager path may not hold a comma (its stream descriptor's separator)")
    descriptor = (
        f"in={source},stream={stream},init_segment={out}/{INIT_OUT},segment_template={out}/{SEGMENT_OUT}"
    )
    return [
        packager,
        "--quiet",
        descriptor,
        "--enable_raw_key_encryption",
        "--keys",
        f"label=:key_id={kid.hex()}:key={key.hex()}",
        "--protection_scheme",
        scheme,
        "--protection_systems",
        "CommonSystem",
        "--clear_lead",
        "0",
        "--segment_duration",
        "100000",  # longer than any segment: the input's one segment stays one
        *(["--iv", iv.hex()] if iv is not None else []),
    ]


def redacted(args: Sequence[str]) -> list[str]:
    """`args` with every `key=<hex>` hidden: what a log or an error may show of a packager command line."""
    return [_KEY_ARG.sub(r"\1**********", a) for a in args]


def default_kid(kid: bytes) -> str:
    """A key id as `cenc:default_KID` writes it (a UUID, lower case)."""
    _check(kid)
    return str(uuid.UUID(bytes=kid))


def common_pssh(kids: Sequence[bytes]) -> bytes:
    """A version 1 `pssh` box of the W3C common system naming `kids`, no data (what ClearKey reads)."""
    for kid in kids:
        _check(kid)
    body = (
        bytes([1, 0, 0, 0])
        + uuid.UUID(COMMON_SYSTEM).bytes
        + len(kids).to_bytes(4, "big")
        + b"".join(kids)
        + (0).to_bytes(4, "big")
    )
    return (8 + len(body)).to_bytes(4, "big") + b"pssh" + body


_NAMESPACES = {"cenc": CENC_NS, "clearkey": CLEARKEY_NS}
_MEDIA_SET = re.compile(r'(\n(\t*)<AdaptationSet\b[^>]*\bcontentType="(?:video|audio)"[^>]*>)')


def with_content_protection(mpd: str, kid: bytes, license_url: str, scheme: str = "cenc") -> str:
    """An MPD whose video and audio AdaptationSets announce cenc, first in each set (the schema's order): the
    `mp4protection` ContentProtection with `cenc:default_KID`, and ClearKey's (DASH-IF's system id) with the
    license URL (DASH-IF IOP's `clearkey:Laurl`, which dash.js and Shaka Player read, and vodflow's playback
    rewrite signs); the `cenc` and `clearkey` namespaces declared on the MPD. No PSSH in the MPD (the init
    segments carry it): dash.js 5 takes the W3C common system's element for ClearKey and hands its PSSH to
    EME as `keyids` init data, which Chromium refuses; without one it makes `keyids` from `default_KID`.
    Text sets stay clear; every other byte is kept. ValueError when the MPD has no media set or protection
    already."""
    _check_scheme(scheme)
    if "ContentProtection" in mpd:
        raise ValueError("the MPD is protected already")
    if any(c in license_url for c in '<>&"'):
        raise ValueError("a license URL may not hold <, >, & or a quote")
    root = re.search(r"<MPD\b[^>]*>", mpd)
    if root is None:
        raise ValueError("not an MPD")
    declared = "".join(
        f' xmlns:{p}="{ns}"' for p, ns in _NAMESPACES.items() if f"xmlns:{p}=" not in root.group()
    )
    opening = root.group()
    closing = "/>" if opening.endswith("/>") else ">"
    mpd = mpd[: root.start()] + opening[: -len(closing)] + declared + closing + mpd[root.end() :]

    def protection(indent: str) -> str:
        lines = [
            f'<ContentProtection schemeIdUri="{MP4_PROTECTION}" value="{scheme}" '
            f'cenc:default_KID="{default_kid(kid)}"/>',
            f'<ContentProtection schemeIdUri="urn:uuid:{CLEARKEY_SYSTEM}" value="ClearKey1.0">',
            f'\t<clearkey:Laurl Lic_type="EME-1.0">{license_url}</clearkey:Laurl>',
            "</ContentProtection>",
        ]
        return "".join(f"\n{indent}{line}" for line in lines)

    mpd, count = _MEDIA_SET.subn(lambda m: m.group(1) + protection(m.group(2) + "\t"), mpd)
    if not count:
        raise ValueError("an MPD without a video or audio AdaptationSet")
    return mpd


KEY_TAG = "#EXT-X-KEY:"


def cenc_playlist(playlist: str, license_url: str, kid: bytes, scheme: str = "cenc") -> str:
    """An HLS media playlist of a cenc rung: `EXT-X-KEY:METHOD=SAMPLE-AES-CTR` (draft-pantos-hls-rfc8216bis,
    fMP4 `cenc`) naming the ClearKey license URL, the key id and `KEYFORMAT="org.w3.clearkey"` (what hls.js
    maps to EME ClearKey), before its `EXT-X-MAP`. ValueError when it
    has keys already or no init section."""
    if KEY_TAG in playlist:
        raise ValueError("the playlist is encrypted already")
    if any(c in license_url for c in '"\r\n'):
        raise ValueError("a license URL may not hold a quote or a line break")
    _check(kid)
    _check_scheme(scheme)
    method = "SAMPLE-AES-CTR" if scheme == "cenc" else "SAMPLE-AES"  # fMP4 cbcs is SAMPLE-AES
    tag = (
        f'{KEY_TAG}METHOD={method},URI="{license_url}",KEYID=0x{kid.hex()},'
        f'KEYFORMAT="{CLEARKEY_KEYFORMAT}",KEYFORMATVERSIONS="1"'
    )
    lines = playlist.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("#EXT-X-MAP:")), None)
    if at is None:
        raise ValueError("a cenc playlist needs an EXT-X-MAP init section")
    return "\n".join([*lines[:at], tag, *lines[at:]])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def clearkey_license(keys: Mapping[bytes, bytes]) -> bytes:
    """The JSON Web Key Set a ClearKey license endpoint answers (W3C EME 9.1.4): each key id and key
    base64url without padding, `type` temporary."""
    for kid, key in keys.items():
        _check(kid, key)
    body = {"keys": [{"kty": "oct", "kid": _b64url(kid), "k": _b64url(key)} for kid, key in keys.items()]}
    return json.dumps({**body, "type": "temporary"}).encode()


MAX_LICENSE_KIDS = 64


def clearkey_request_kids(body: bytes) -> list[bytes]:
    """The key ids a ClearKey license request (EME's `{"kids": [...], "type": ...}`) asks for; ValueError
    for anything else (not JSON, no list, a kid that is not 16 bytes base64url, more than 64)."""
    try:
        request = json.loads(body)
    except ValueError:
        raise ValueError("a license request is JSON") from None
    kids = request.get("kids") if isinstance(request, dict) else None
    if not isinstance(kids, list) or not 0 < len(kids) <= MAX_LICENSE_KIDS:
        raise ValueError(f"a license request names 1 to {MAX_LICENSE_KIDS} kids")
    out = []
    for kid in kids:
        if not isinstance(kid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{22}", kid):
            raise ValueError("a kid is 16 bytes in unpadded base64url")
        out.append(base64.urlsafe_b64decode(kid + "=="))
    return out
