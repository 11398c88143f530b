"""HLS AES-128 builders: whole-segment CBC with the media sequence as IV, EXT-X-KEY lines per key period."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vodflow.packaging.encryption import (
    decrypt_segment,
    encrypt_segment,
    key_uri,
    keyed_playlist,
    media_sequence,
    periods,
    segment_uris,
    sequence_iv,
)

KEY = bytes(range(16))
PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init-0.m4s"
#EXTINF:6.000000,
seg-0-00001.m4s
#EXTINF:6.000000,
seg-0-00002.m4s
#EXTINF:6.000000,
seg-0-00003.m4s
#EXTINF:6.000000,
seg-0-00004.m4s
#EXTINF:2.000000,
seg-0-00005.m4s
#EXT-X-ENDLIST
"""


def test_a_segment_is_cbc_with_pkcs7_padding_and_round_trips():
    data = b"\x47" * 188 * 3  # three TS packets: 564 bytes, not a multiple of 16
    iv = sequence_iv(3)
    sealed = encrypt_segment(data, KEY, iv)
    assert len(sealed) == 576 and sealed[:16] != data[:16]
    # what any AES-128 HLS client does: CBC with the IV, then strip PKCS7 (here 12 bytes of 0x0c)
    plain = Cipher(algorithms.AES(KEY), modes.CBC(iv)).decryptor().update(sealed)
    assert plain[:564] == data and plain[564:] == bytes([12]) * 12
    assert decrypt_segment(sealed, KEY, iv) == data
    whole = encrypt_segment(b"x" * 32, KEY, iv)
    assert len(whole) == 48  # a full block of padding after a whole number of blocks


def test_the_iv_is_the_media_sequence_number_big_endian():
    assert sequence_iv(0) == bytes(16)
    assert sequence_iv(258) == bytes(14) + b"\x01\x02"
    assert encrypt_segment(b"a" * 20, KEY, sequence_iv(1)) != encrypt_segment(b"a" * 20, KEY, sequence_iv(2))
    with pytest.raises(ValueError):
        sequence_iv(-1)
    with pytest.raises(ValueError):
        encrypt_segment(b"a", KEY[:15], sequence_iv(0))
    with pytest.raises(ValueError):
        decrypt_segment(b"a" * 15, KEY, sequence_iv(0))


def test_without_rotation_one_key_line_before_the_first_segment_after_the_clear_map():
    uri = "https://api.example/v1/keys/job1/" + "ab" * 16
    text = keyed_playlist(PLAYLIST, [uri], None)
    lines = text.splitlines()
    keys = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-KEY:")]
    assert keys == [lines.index('#EXT-X-MAP:URI="init-0.m4s"') + 1]
    assert lines[keys[0]] == f'#EXT-X-KEY:METHOD=AES-128,URI="{uri}"'
    assert "IV=" not in text  # the IV is each segment's media sequence number
    assert [line for line in lines if not line.startswith("#EXT-X-KEY")] == PLAYLIST.splitlines()
    assert segment_uris(text) == segment_uris(PLAYLIST) and media_sequence(text) == 3


def test_rotation_puts_a_new_key_line_every_n_segments():
    uris = [f"https://h/v1/keys/j/{n:032x}" for n in range(3)]
    text = keyed_playlist(PLAYLIST, uris, 2)
    lines = text.splitlines()
    order = [line for line in lines if line.startswith("#EXT-X-KEY") or not line.startswith("#")]
    assert order == [
        f'#EXT-X-KEY:METHOD=AES-128,URI="{uris[0]}"', "seg-0-00001.m4s", "seg-0-00002.m4s",
        f'#EXT-X-KEY:METHOD=AES-128,URI="{uris[1]}"', "seg-0-00003.m4s", "seg-0-00004.m4s",
        f'#EXT-X-KEY:METHOD=AES-128,URI="{uris[2]}"', "seg-0-00005.m4s",
    ]  # fmt: skip
    assert periods(5, 2) == 3 and periods(5, None) == 1 and periods(5, 5) == 1 and periods(0, 2) == 1


def test_wrong_key_counts_quotes_and_keyed_playlists_are_refused():
    with pytest.raises(ValueError, match="key period"):
        keyed_playlist(PLAYLIST, ["https://h/a"], 2)
    with pytest.raises(ValueError, match="quote"):
        keyed_playlist(PLAYLIST, ['https://h/a"b'], None)
    keyed = keyed_playlist(PLAYLIST, ["https://h/a"], None)
    with pytest.raises(ValueError, match="already"):
        keyed_playlist(keyed, ["https://h/a"], None)


def test_key_uris_point_at_the_key_endpoint_only():
    kid = "0f" * 16
    assert key_uri("https://api.example/", "job-1", kid) == f"https://api.example/v1/keys/job-1/{kid}"
    with pytest.raises(ValueError, match="http"):
        key_uri("s3://bucket/keys", "job-1", kid)
    with pytest.raises(ValueError, match="hex"):
        key_uri("https://api.example", "job-1", "0F" * 16)
