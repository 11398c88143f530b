"""Rewrite stored playlists for signed playback: every URI an HLS playlist or a DASH manifest names, through a
mapping the caller gives (signed, expiring links); nothing else changes. Pure: text in, text out.

Both are read as hostile: size and line caps, no control characters, HLS attribute values without quotes
or line breaks; the MPD is parsed with defusedxml (no DTDs, no entities) and must be an `MPD`.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import urljoin

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_PLAYLIST_BYTES = 4 << 20
MAX_PLAYLIST_LINES = 200_000
MAX_URI_CHARS = 4096
_URI_ATTR = re.compile(r'(?<=[:,])URI="([^"\r\n]*)"')
_MPD = "{urn:mpeg:dash:schema:mpd:2011}"
# License-server URL elements of ContentProtection: DASH-IF ClearKey's and DASH-IF CPS's.
LICENSE_URL_TAGS = ("{http://dashif.org/guidelines/clearKey}Laurl", "{https://dashif.org/CPS}laurl")
# Attributes that hold (template) URIs relative to the BaseURL.
_URI_ATTRS = {
    f"{_MPD}SegmentTemplate": ("media", "initialization", "index", "bitstreamSwitching"),
    f"{_MPD}SegmentURL": ("media", "index"),
    f"{_MPD}Initialization": ("sourceURL",),
    f"{_MPD}RepresentationIndex": ("sourceURL",),
    f"{_MPD}BitstreamSwitching": ("sourceURL",),
}

UriMap = Callable[[str], str]


class RewriteError(ValueError):
    """A playlist or manifest that cannot be served: too large, malformed, or naming what it must not."""


def _checked_text(data: bytes, what: str) -> str:
    if len(data) > MAX_PLAYLIST_BYTES:
        raise RewriteError(f"{what} larger than {MAX_PLAYLIST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RewriteError(f"{what} is not UTF-8") from None
    if any(ord(c) < 32 and c not in "\r\n\t" for c in text):
        raise RewriteError(f"{what} holds control characters")
    return text.removeprefix("\ufeff")


def _checked_uri(uri: str) -> str:
    if not uri or len(uri) > MAX_URI_CHARS or any(c in uri for c in '"\r\n') or uri != uri.strip():
        raise RewriteError("a URI that is empty, too long, or holds quotes, spaces or line breaks")
    return uri


def _mapped(mapping: UriMap, uri: str) -> str:
    return _checked_uri(mapping(_checked_uri(uri)))


def rewrite_hls(data: bytes, mapping: UriMap) -> str:
    """An HLS playlist (master or media) with every URI mapped: each URI line and each `URI="..."` attribute
    of a tag (`EXT-X-KEY`, `EXT-X-MAP`, `EXT-X-MEDIA`, `EXT-X-I-FRAME-STREAM-INF`, ...); tags, comments and
    line order unchanged. RewriteError for what is not a playlist, too large, or a URI `mapping` refuses."""
    text = _checked_text(data, "playlist")
    lines = text.splitlines()
    if len(lines) > MAX_PLAYLIST_LINES:
        raise RewriteError(f"playlist longer than {MAX_PLAYLIST_LINES} lines")
    if not lines or lines[0].strip() != "#EXTM3U":
        raise RewriteError("not an HLS playlist: it does not start with #EXTM3U")
    out = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            out.append(line)
        elif stripped.startswith("#EXT"):
            out.append(_URI_ATTR.sub(lambda m: f'URI="{_mapped(mapping, m.group(1))}"', line))
        elif stripped.startswith("#"):
            out.append(line)
        else:
            out.append(_mapped(mapping, stripped))
    return "\n".join(out) + "\n"


def rewrite_mpd(data: bytes, base_url: str, license_map: UriMap) -> str:
    """A DASH manifest whose relative URIs all resolve under `base_url` (one signed folder link, set as the
    MPD's first `BaseURL`; segment templates cannot be signed one by one) and whose ContentProtection
    license URLs are mapped by `license_map`. `Location` and `PatchLocation` (which would make a player fetch
    an unsigned manifest) are dropped. RewriteError for an MPD that is not one, too large, or that names an
    absolute URI (`http://...`, `//host`, `/path`) where only relative ones may be."""
    text = _checked_text(data, "manifest")
    try:
        namespaces = [
            ns for _, ns in SafeET.iterparse(io.StringIO(text), events=("start-ns",), forbid_dtd=True)
        ]
        root = SafeET.fromstring(text, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise RewriteError(f"unreadable manifest: {type(exc).__name__}") from None
    if root.tag != f"{_MPD}MPD":
        raise RewriteError("not a DASH manifest: its root is not an MPD")
    for prefix, uri in namespaces:
        ET.register_namespace(prefix, uri)
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in (f"{_MPD}Location", f"{_MPD}PatchLocation"):
                parent.remove(child)
    for element in root.iter():
        if element.tag == f"{_MPD}BaseURL":
            _relative((element.text or "").strip(), "BaseURL")
        for name in _URI_ATTRS.get(str(element.tag), ()):
            if (value := element.get(name)) is not None:
                _relative(value, f"{str(element.tag).rpartition('}')[2]}@{name}")
        if element.tag in LICENSE_URL_TAGS:
            element.text = _mapped(license_map, (element.text or "").strip())
    top = root.findall(f"{_MPD}BaseURL")  # alternatives of each other: one left unsigned would be played
    for element in top:
        root.remove(element)
    base = ET.Element(f"{_MPD}BaseURL")
    base.text = _checked_uri(urljoin(base_url, (top[0].text or "").strip()) if top else base_url)
    base.tail = "\n\t"
    after = [i for i, child in enumerate(root) if child.tag == f"{_MPD}ProgramInformation"]
    root.insert(after[-1] + 1 if after else 0, base)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _relative(uri: str, where: str) -> None:
    """Refuse an absolute URI (scheme, `//host` or `/path`) where the manifest may name only relative ones."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) or uri.startswith(("/", "\\")):
        raise RewriteError(f"{where} names an absolute URI; only relative ones are signed")
    _checked_uri(uri) if uri else None
