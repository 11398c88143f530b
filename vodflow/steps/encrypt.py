"""Encrypt the ladders of `encryption` presets after packaging, before publishing: run by the pipeline on the
finished outputs of either local encoder (one-process or chunked), so both are encrypted the same way.

`aes-128` (`vodflow.packaging.encryption`): every media segment each media playlist lists (MPEG-TS, or fMP4
after its clear init segment) is encrypted whole, and the playlist gets an `EXT-X-KEY` line per key period
pointing at vodflow's key endpoint. A ladder's rungs share its keys, one per period of `rotateEvery`
segments (one key without rotation). A `cmaf` ladder encrypted so is HLS only: its DASH manifest is not
published (no DASH player decrypts whole segments). The keys come from a `KeyProvider` (sealed at rest apart
from the outputs); nothing here logs, returns or writes one anywhere else.

`cenc` (`cmaf` presets, `vodflow.packaging.cenc`): one key per ladder; Shaka Packager (`packager`, the
executable VODFLOW_PACKAGER names) encrypts every media segment of every rung in its own run (a few at a
time), keeping the segment's name and timing, and the ladder's init segments are replaced by Shaka's
(`tenc`, common `pssh`). Its DASH manifest gets the ContentProtection elements (ClearKey license at
`{base}/v1/clearkey/{job id}`), its HLS media playlists a SAMPLE-AES-CTR key line.

A retried step starts again from the clear ladders: each is encrypted into a staging copy, swapped in only
when complete, and the run's temp dir records when every ladder is done (`ENCRYPTED_MARK`).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import CmafOutput, HlsOutput, OutputPlan
from vodflow.jobs.spec import Encryption, Preset
from vodflow.keys.provider import ContentKey, KeyProvider
from vodflow.media.capacity import host_cores
from vodflow.media.commands import hls_dir, hls_variants
from vodflow.media.packager import run_packager
from vodflow.packaging.cenc import (
    FIRST_SEGMENT_OUT,
    INIT_OUT,
    cenc_playlist,
    clearkey_license_url,
    packager_args,
    with_content_protection,
)
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

PACKAGER_RUNS = 4  # packager runs at a time (fewer on a host with fewer cores)
ENCRYPTED_MARK = ".encrypted"  # in the run's temp dir: every ladder of the job is encrypted
STAGING = ".encrypting"


def encrypted_presets(presets: Sequence[Preset] | None) -> dict[str, Encryption]:
    """The `encryption` of each preset that has one, by preset id (empty for a job without)."""
    return {p.id or "": p.encryption for p in presets or [] if p.encryption is not None}


def needs_encryption(presets: Sequence[Preset] | None) -> bool:
    return any(p.encryption is not None for p in presets or [])


def needs_packager(presets: Sequence[Preset] | None) -> bool:
    """Whether a preset asks for `cenc` (made with Shaka Packager)."""
    return any(p.encryption is not None and p.encryption.method == "cenc" for p in presets or [])


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
    if ladder.encryption.method == "cenc":
        return 1  # one key id and key per ladder
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
    _swap(folder, staging)


def _init_uri(playlist: str) -> str:
    """The `EXT-X-MAP` URI of a media playlist; StepError when it has none."""
    for line in playlist.splitlines():
        if line.startswith('#EXT-X-MAP:URI="') and line.endswith('"'):
            return line[len('#EXT-X-MAP:URI="') : -1]
    raise StepError("encrypt", "encrypt_failed", "a CMAF media playlist without an EXT-X-MAP init segment")


def _cenc_ladder(ladder: _Ladder, key: ContentKey, job_id: str, base_url: str, packager: str) -> None:
    """Encrypt one CMAF ladder with cenc into a staging copy and swap it in: every media segment of each
    rung through Shaka in a run of its own (its clear init segment + it), Shaka's init segment in place of
    the clear one, the manifests signalled (see the module's docstring)."""
    out = ladder.out
    if not isinstance(out, CmafOutput):  # the spec allows cenc on cmaf presets only
        raise StepError("encrypt", "encrypt_failed", "cenc needs a CMAF ladder")
    folder = ladder.folder
    staging = folder.parent / STAGING / folder.name
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(folder, staging)
    license_url = clearkey_license_url(base_url, job_id)
    scheme = ladder.encryption.scheme or "cenc"
    iv = secrets.token_bytes(16) if scheme == "cbcs" else None  # see packager_args
    jobs = []  # (playlist, init, segment, stream) of every media segment of the ladder
    for n, name in enumerate(ladder.playlists):
        text = (folder / name).read_text()
        init_name = _init_uri(text)
        _segment(folder, name, init_name)
        stream = "video" if n < len(out.renditions) else "audio"
        jobs += [(name, init_name, _segment(folder, name, uri).name, stream) for uri in segment_uris(text)]
        (staging / name).write_text(cenc_playlist(text, license_url, key.kid, scheme))
    with tempfile.TemporaryDirectory(prefix="cenc-", dir=folder.parent / STAGING) as scratch:

        def one(k: int) -> None:
            name, init_name, uri, stream = jobs[k]
            work = Path(scratch) / str(k)
            done = work / "out"
            done.mkdir(parents=True)
            source = work / "in.mp4"
            source.write_bytes((folder / init_name).read_bytes() + (folder / uri).read_bytes())
            args = packager_args(packager, str(source), str(done), stream, key.kid, key.key, scheme, iv)
            run_packager(args, secrets=(key.key.hex(),), folder=scratch)
            made = sorted(p.name for p in done.iterdir())
            if made != sorted([INIT_OUT, FIRST_SEGMENT_OUT]):
                reason = f"{name}: the packager cut segment {uri[:40]!r} into {len(made) - 1}"
                raise StepError("encrypt", "encrypt_failed", reason)
            (staging / uri).write_bytes((done / FIRST_SEGMENT_OUT).read_bytes())
            if k == 0 or jobs[k - 1][1] != init_name:  # the rung's first segment: its init segment too
                (staging / init_name).write_bytes((done / INIT_OUT).read_bytes())
            shutil.rmtree(work)

        # short runs, mostly waiting: a few at a time (list() re-raises the first failure)
        with ThreadPoolExecutor(max_workers=min(PACKAGER_RUNS, host_cores())) as pool:
            list(pool.map(one, range(len(jobs))))
    try:
        mpd = with_content_protection((folder / MANIFEST).read_text(), key.kid, license_url, scheme)
    except (OSError, ValueError) as exc:
        raise StepError("encrypt", "encrypt_failed", f"{MANIFEST}: {exc}") from None
    (staging / MANIFEST).write_text(mpd)
    _swap(folder, staging)


def _swap(folder: Path, staging: Path) -> None:
    """Put the complete encrypted copy `staging` in place of the clear ladder `folder`."""
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
    doc: JobDocument,
    plan: OutputPlan,
    workdir: Path,
    provider: KeyProvider,
    base_url: str,
    packager: str | None = None,
) -> int:
    """Encrypt every ladder of the job's `encryption` presets under `workdir` with new keys from `provider`
    (kept by it under the job's id), key URIs under `base_url`, `cenc` ladders with the Shaka Packager
    executable `packager`; how many ladders. Done once per run: a retry after success does nothing.
    StepError (encrypt) when a ladder cannot be read or the packager fails."""
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
        if ladder.encryption.method == "cenc":
            if packager is None:
                raise StepError("encrypt", "encrypt_failed", "cenc needs Shaka Packager (VODFLOW_PACKAGER)")
            _cenc_ladder(ladder, keys[start], doc.id, base_url, packager)
        else:
            _encrypt_ladder(ladder, keys[start : start + count], doc.id, base_url)
        start += count
    mark.touch()
    return len(ladders)
