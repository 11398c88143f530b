"""Encrypt the ladders of `encryption` presets after packaging, before publishing: run by the pipeline on the
finished outputs of either local encoder (one-process or chunked), so both are encrypted the same way.

`aes-128` (`vodflow.packaging.encryption`): every media segment each media playlist lists (MPEG-TS, or fMP4
after its clear init segment) is encrypted whole, and the playlist gets an `EXT-X-KEY` line per key period
pointing at vodflow's key endpoint. A ladder's rungs share its keys, one per period of `rotateEvery`
segments (one key without rotation). A `cmaf` ladder encrypted so is HLS only: its DASH manifest is not
published (no DASH player decrypts whole segments). The keys come from a `KeyProvider` (sealed at rest apart
from the outputs); nothing here logs, returns or writes one anywhere else.

A retried step starts again from the clear ladders: each is encrypted into a staging copy, swapped in only
when complete, and the run's temp dir records when every ladder is done (`ENCRYPTED_MARK`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import CmafOutput, HlsOutput, OutputPlan
from vodflow.jobs.spec import Encryption, Preset
from vodflow.keys.provider import ContentKey, KeyProvider
from vodflow.media.commands import hls_dir, hls_variants
from vodflow.packaging.cmaf import MANIFEST, cmaf_dir, media_playlists
from vodflow.packaging.encryption import (
    encrypt_segment,
    key_uri,
    keyed_playlist,
    media_sequence,
    periods,
    segment_uris,
    sequence_iv,
)

ENCRYPTED_MARK = ".encrypted"  # in the run's temp dir: every ladder of the job is encrypted
STAGING = ".encrypting"


def encrypted_presets(presets: Sequence[Preset] | None) -> dict[str, Encryption]:
    """The `encryption` of each preset that has one, by preset id (empty for a job without)."""
    return {p.id or "": p.encryption for p in presets or [] if p.encryption is not None}


def needs_encryption(presets: Sequence[Preset] | None) -> bool:
    return any(p.encryption is not None for p in presets or [])


@dataclass(frozen=True)
class _Ladder:
    out: HlsOutput | CmafOutput
    folder: Path
    playlists: tuple[str, ...]  # media playlists, relative to `folder`
    encryption: Encryption


def _ladders(doc: JobDocument, plan: OutputPlan, workdir: Path) -> list[_Ladder]:
    chosen = encrypted_presets(doc.presets)
    ladders = []
    for out in plan.hls:
        if out.preset_id in chosen:
            names = tuple(f"{name}/index.m3u8" for name in hls_variants(out))
            ladders.append(_Ladder(out, hls_dir(workdir, out), names, chosen[out.preset_id]))
    for out in plan.cmaf:
        if out.preset_id in chosen:
            names = tuple(media_playlists(out))
            ladders.append(_Ladder(out, cmaf_dir(workdir, out), names, chosen[out.preset_id]))
    return ladders


def _key_periods(ladder: _Ladder) -> int:
    counts = [len(segment_uris((ladder.folder / name).read_text())) for name in ladder.playlists]
    return max(periods(count, ladder.encryption.rotate_every) for count in counts or [0])


def _segment(folder: Path, playlist: str, uri: str) -> Path:
    """The file of segment `uri` of the playlist `folder/playlist`; StepError for one outside the ladder."""
    path = (folder / playlist).parent / uri
    if "/" in uri or "\\" in uri or uri in (".", "..") or not path.is_file():
        raise StepError("encrypt", "encrypt_failed", f"{playlist}: segment {uri[:40]!r} is not in the ladder")
    return path


def _encrypt_ladder(ladder: _Ladder, keys: Sequence[ContentKey], job_id: str, base_url: str) -> None:
    """Encrypt one ladder into a staging copy and swap it in (see the module's docstring)."""
    folder = ladder.folder
    staging = folder.parent / STAGING / folder.name
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    uris = [key_uri(base_url, job_id, k.kid_hex) for k in keys]
    every = ladder.encryption.rotate_every
    for name in ladder.playlists:
        text = (folder / name).read_text()
        first = media_sequence(text)
        segments = segment_uris(text)
        for index, uri in enumerate(segments):
            clear = _segment(folder, name, uri).read_bytes()
            key = keys[index // every if every else 0].key
            (staging / name).parent.joinpath(uri).write_bytes(
                encrypt_segment(clear, key, sequence_iv(first + index))
            )
        (staging / name).write_text(keyed_playlist(text, uris[: periods(len(segments), every)], every))
    if isinstance(ladder.out, CmafOutput):
        (staging / MANIFEST).unlink(missing_ok=True)  # HLS only: see the module's docstring
    clear_copy = _clear_copy(folder)
    shutil.rmtree(clear_copy, ignore_errors=True)
    folder.rename(clear_copy)
    staging.rename(folder)
    shutil.rmtree(folder.parent / STAGING, ignore_errors=True)


def _clear_copy(folder: Path) -> Path:
    return folder.parent / STAGING / f"{folder.name}.clear"


def _restore(folder: Path) -> None:
    """Put back a clear ladder a step stopped between its two renames left aside."""
    if not folder.exists() and _clear_copy(folder).is_dir():
        _clear_copy(folder).rename(folder)


def encrypt_outputs(
    doc: JobDocument, plan: OutputPlan, workdir: Path, provider: KeyProvider, base_url: str
) -> int:
    """Encrypt every ladder of the job's `encryption` presets under `workdir` with new keys from `provider`
    (kept by it under the job's id), key URIs under `base_url`; how many ladders. Done once per run: a
    retry after success does nothing. StepError (encrypt) when a ladder cannot be read."""
    mark = workdir / ENCRYPTED_MARK
    ladders = _ladders(doc, plan, workdir)
    if mark.exists() or not ladders:
        return 0
    for ladder in ladders:
        _restore(ladder.folder)
    counts = [_key_periods(ladder) for ladder in ladders]
    labels = [f"{ladder.out.file_id}/{n}" for ladder, count in zip(ladders, counts, strict=True)
              for n in range(count)]  # fmt: skip
    keys = provider.keys_for(doc.id, labels)
    start = 0
    for ladder, count in zip(ladders, counts, strict=True):
        _encrypt_ladder(ladder, keys[start : start + count], doc.id, base_url)
        start += count
    mark.touch()
    return len(ladders)
