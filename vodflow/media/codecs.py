"""RFC 6381 codec strings of HEVC and AV1 streams, read from their decoder configuration records (pure).

HLS masters (`CODECS=`) and DASH manifests (`codecs=`) name each encoded stream exactly, so players can skip
what they cannot decode. The strings come from the encoded stream's own configuration record, as ffprobe
prints it (`-show_data` extradata of an MP4/fMP4 track): `hvcC` for HEVC (ISO/IEC 14496-15, annex E) and
`av1C` for AV1 (the AV1 codec ISO media file format binding, "Codecs Parameter String").
"""

from __future__ import annotations


def hexdump_bytes(dump: str) -> bytes:
    """The bytes of ffprobe's `-show_data` hex dump (`00000000: 0102 2000 ...  ..ascii..` lines);
    ValueError when a line is not one."""
    data = bytearray()
    for line in dump.splitlines():
        if not line.strip():
            continue
        offset, sep, rest = line.partition(": ")
        if not sep or len(offset) != 8:
            raise ValueError(f"not a hex dump line: {line[:40]!r}")
        data += bytes.fromhex(rest[:40].split("  ")[0].replace(" ", ""))
    return bytes(data)


def _reverse_bits32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def hevc_codec_string(hvcc: bytes, tag: str = "hvc1") -> str:
    """`hvc1.<profile>.<compatibility>.<tier><level>.<constraints>` from an `hvcC` record.

    ValueError when `hvcc` is not one (too short, or not configuration version 1).
    """
    if len(hvcc) < 13 or hvcc[0] != 1:
        raise ValueError("not an HEVC decoder configuration record (hvcC)")
    space = ("", "A", "B", "C")[hvcc[1] >> 6]
    tier = "H" if hvcc[1] & 0x20 else "L"
    profile = hvcc[1] & 0x1F
    compatibility = _reverse_bits32(int.from_bytes(hvcc[2:6], "big"))
    constraints = hvcc[6:12].rstrip(b"\0")
    parts = [tag, f"{space}{profile}", f"{compatibility:X}", f"{tier}{hvcc[12]}"]
    parts += [f"{byte:X}" for byte in constraints]
    return ".".join(parts)


def av1_codec_string(av1c: bytes) -> str:
    """`av01.<profile>.<level><tier>.<bit depth>` from an `av1C` record; ValueError when it is not one."""
    if len(av1c) < 4 or av1c[0] != 0x81:
        raise ValueError("not an AV1 codec configuration record (av1C)")
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high, twelve = bool(av1c[2] & 0x40), bool(av1c[2] & 0x20)
    depth = (12 if twelve else 10) if high else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
