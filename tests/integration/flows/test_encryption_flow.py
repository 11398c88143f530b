"""Encrypted ladders through the pipeline flow, one-process and chunked: AES-128 segments that decode only
with the key the key endpoint serves (ffmpeg's HLS client fetches it from a local key server), the keys
sealed at rest under `keys/`, and no key (the chunked job's cenc key too: Shaka Packager has it on its
command line) in hex or base64 in any published object, the documents, the logs or the Prefect server's
records of the runs."""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.media import join_segment, make_clip
from tests.needs import packager
from vodflow.api.jobs import output_keys
from vodflow.encoders import chunked as chunked_encoder
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument
from vodflow.keys.provider import content_keys_key, read_content_key
from vodflow.packaging.encryption import decrypt_segment, media_sequence, segment_uris, sequence_iv
from vodflow.settings import Settings
from vodflow.storage.local import LocalStorage

SECRET = "k" * 48
ONE = "a" * 24  # the one-process job
CHUNKED = "b" * 24
KEY_LINE = re.compile(r'^#EXT-X-KEY:METHOD=AES-128,URI="(?P<uri>[^"]+)"$')


class _Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class _KeyServer:
    """`/v1/keys/<job>/<kid>` on loopback, served by `read_content_key` (what the API's endpoint serves)."""

    def __init__(self, storage: LocalStorage) -> None:
        settings = Settings(key_secret=SecretStr(SECRET))
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(self.path)
                match = re.fullmatch(r"/v1/keys/([^/]+)/([0-9a-f]{32})", self.path)
                key = read_content_key(storage, settings, match[1], match[2]) if match else None
                self.send_response(200 if key else 404)
                self.send_header("Content-Length", str(len(key or b"")))
                self.end_headers()
                self.wfile.write(key or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def encrypted(prefect_harness, tmp_path_factory) -> Iterator[dict]:
    """Two jobs of a 14 s source (the chunked one in 6 s chunks): an HLS ladder with a new key every segment
    (one-process) or every 2 (chunked), a CMAF ladder with one key, and a clear MP4; logs captured."""
    packager()  # the cenc ladder's Shaka Packager: skipped (failed under CI) without it
    root = tmp_path_factory.mktemp("encrypted")
    source = make_clip(root / "source.mp4", 428, 240, seconds=14)
    storage = LocalStorage(root / "data")
    server = _KeyServer(storage)
    logs = _Logs()
    vodflow_logger = logging.getLogger("vodflow")
    level = vodflow_logger.level
    logging.getLogger().addHandler(logs)
    vodflow_logger.setLevel(logging.DEBUG)
    one = {
        "videoUrl": str(source),
        "presets": [
            {"format": "hls", "resolutions": ["240"], "encryption": {"method": "aes-128", "rotateEvery": 1}},
            {"format": "cmaf", "resolutions": ["240"], "encryption": {"method": "aes-128"}},
            {"format": "mp4", "resolutions": ["240"]},
        ],
    }
    chunked = {
        "videoUrl": str(source),
        "presets": [
            {"format": "hls", "resolutions": ["240"], "encryption": {"method": "aes-128", "rotateEvery": 2}},
            {"format": "cmaf", "resolutions": ["240"], "encryption": {"method": "cenc"}},  # Shaka Packager
        ],
    }
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("VODFLOW_STORAGE", "local")
            env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
            env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
            env.setenv("VODFLOW_KEY_SECRET", SECRET)
            env.setenv("VODFLOW_PLAYBACK_BASE_URL", server.base)
            calls: list[str] = []
            real = chunked_encoder.encode_in_chunks
            env.setattr(
                chunked_encoder, "encode_in_chunks", lambda *a, **k: calls.append("x") or real(*a, **k)
            )
            docs = {ONE: encode_video(one, job_id=ONE)}
            assert calls == []  # one process
            env.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "10")
            env.setenv("VODFLOW_CHUNK_SECONDS", "6")
            docs[CHUNKED] = encode_video(chunked, job_id=CHUNKED)
            assert calls == ["x"]  # in chunks
        yield {"docs": docs, "storage": storage, "server": server, "logs": logs, "root": root}
    finally:
        logging.getLogger().removeHandler(logs)
        vodflow_logger.setLevel(level)
        server.server.shutdown()


def ladder(doc: dict, fmt: str) -> dict:
    return next(f for f in doc["files"] if f["type"] == "x-tar" and f["meta"]["format"] == fmt)


def media_playlists(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.m3u8") if p.name != "index.m3u8" or p.parent != folder)


def all_keys(storage: LocalStorage, job_id: str, folder: Path) -> dict[str, bytes]:
    """Every key the ladder's playlists name (kid: key), read back as the key endpoint reads them."""
    settings = Settings(key_secret=SecretStr(SECRET))
    keys = {}
    for playlist in media_playlists(folder):
        for line in playlist.read_text().splitlines():
            if match := KEY_LINE.match(line):
                kid = match["uri"].rsplit("/", 1)[1]
                keys[kid] = read_content_key(storage, settings, job_id, kid)
    return keys


def cenc_key(storage: LocalStorage, job_id: str, folder: Path) -> bytes:
    """The key of a cenc ladder, by the `cenc:default_KID` of its MPD."""
    kid = re.search(r'cenc:default_KID="([0-9a-f-]{36})"', (folder / "manifest.mpd").read_text())
    assert kid is not None
    key = read_content_key(storage, Settings(key_secret=SecretStr(SECRET)), job_id, kid[1].replace("-", ""))
    assert key is not None
    return key


def frames(target: Path, *options: str) -> int:
    """Video frames ffprobe decodes from `target` (0 when it cannot read it)."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", *options, "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=nb_read_frames", "-of", "json", str(target)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    streams = json.loads(run.stdout or "{}").get("streams") or [{}]
    return int(streams[0].get("nb_read_frames") or 0)


HLS_CLIENT = ("-allowed_extensions", "ALL", "-protocol_whitelist", "file,http,tcp,crypto")


def test_both_jobs_complete_with_keys_sealed_apart_and_the_mp4_clear(encrypted):
    storage: LocalStorage = encrypted["storage"]
    for job_id, doc in encrypted["docs"].items():
        assert doc["status"] == "completed", doc.get("error")
        assert storage.exists(content_keys_key(job_id)) and content_keys_key(job_id).startswith("keys/")
        assert content_keys_key(job_id) in output_keys(JobDocument.model_validate(doc))[0]  # deleted with it
    one = encrypted["docs"][ONE]
    video = next(f for f in one["files"] if f["type"] == "video")
    assert frames(storage.root / video["filePath"]) == 14 * 25  # the MP4 is not encrypted
    cmaf = ladder(one, "cmaf")
    assert "dashUrl" not in cmaf["meta"] and not (storage.root / cmaf["filePath"] / "manifest.mpd").exists()


LADDERS = [(ONE, "hls", 1), (ONE, "cmaf", None), (CHUNKED, "hls", 2)]  # job, format, rotateEvery


@pytest.mark.parametrize(("job_id", "fmt", "every"), LADDERS)
def test_each_period_of_segments_has_its_key_at_the_key_endpoint(encrypted, job_id, fmt, every):
    storage: LocalStorage = encrypted["storage"]
    entry = ladder(encrypted["docs"][job_id], fmt)
    folder = storage.root / entry["filePath"]
    for playlist in media_playlists(folder):
        text = playlist.read_text()
        lines = text.splitlines()
        segments = segment_uris(text)
        keyed = [KEY_LINE.match(line) for line in lines if line.startswith("#EXT-X-KEY")]
        assert all(keyed) and len(keyed) == (-(-len(segments) // every) if every else 1), playlist
        for match in keyed:
            assert match["uri"].startswith(f"{encrypted['server'].base}/v1/keys/{job_id}/")
        if fmt == "cmaf":  # the init segment stays clear: the key line comes after EXT-X-MAP
            assert lines.index(next(ln for ln in lines if ln.startswith("#EXT-X-MAP"))) < lines.index(
                next(ln for ln in lines if ln.startswith("#EXT-X-KEY"))
            )
    keys = all_keys(storage, job_id, folder)
    assert keys and all(len(key) == 16 for key in keys.values()) and len(set(keys.values())) == len(keys)


@pytest.mark.parametrize(("job_id", "fmt"), [(ONE, "hls"), (ONE, "cmaf"), (CHUNKED, "hls")])
def test_segments_decode_only_with_their_key(encrypted, job_id, fmt, tmp_path):
    storage: LocalStorage = encrypted["storage"]
    folder = storage.root / ladder(encrypted["docs"][job_id], fmt)["filePath"]
    keys = all_keys(storage, job_id, folder)
    playlist = media_playlists(folder)[0]  # the video rung
    text = playlist.read_text()
    first, current, decoded, blind = media_sequence(text), None, 0, 0
    index = 0
    init = folder / "init-0.m4s"
    # read as what a player reads them as: probing random bytes for any format once found a "video frame"
    container = ("-f", "mp4") if fmt == "cmaf" else ("-f", "mpegts")
    for line in text.splitlines():
        if match := KEY_LINE.match(line):
            current = keys[match["uri"].rsplit("/", 1)[1]]
        elif line and not line.startswith("#"):
            sealed = (playlist.parent / line).read_bytes()
            clear = decrypt_segment(sealed, current, sequence_iv(first + index))
            plain, locked = tmp_path / f"plain-{index}", tmp_path / f"locked-{index}"
            if fmt == "cmaf":
                plain.write_bytes(init.read_bytes() + clear)
                join_segment(init, playlist.parent / line, locked)
            else:
                plain.write_bytes(clear)
                locked.write_bytes(sealed)
            decoded += frames(plain, *container)
            blind += frames(locked, *container)
            index += 1
    assert decoded == 14 * 25 and blind == 0


@pytest.mark.parametrize(("job_id", "fmt"), [(ONE, "hls"), (ONE, "cmaf"), (CHUNKED, "hls")])
def test_an_hls_client_plays_the_ladder_with_keys_from_the_endpoint_only(encrypted, job_id, fmt):
    storage: LocalStorage = encrypted["storage"]
    master = storage.root / ladder(encrypted["docs"][job_id], fmt)["filePath"] / "index.m3u8"
    server = encrypted["server"]
    asked = len(server.requests)
    assert frames(master, *HLS_CLIENT) == 14 * 25
    assert any(path.startswith(f"/v1/keys/{job_id}/") for path in server.requests[asked:])
    storage.upload_bytes(storage.read_bytes(content_keys_key(job_id)), "keys/moved.json")
    storage.delete_keys([content_keys_key(job_id)])
    try:  # the endpoint has no key for the job: nothing decodes
        assert frames(master, *HLS_CLIENT) == 0
    finally:
        storage.upload_bytes(storage.read_bytes("keys/moved.json"), content_keys_key(job_id))


def key_forms(key: bytes) -> list[bytes]:
    b64 = base64.b64encode(key)
    return [key.hex().encode(), key.hex().upper().encode(), b64, b64.rstrip(b"="),
            base64.urlsafe_b64encode(key).rstrip(b"=")]  # fmt: skip


def prefect_records(job_ids: tuple[str, ...]) -> bytes:
    """Everything the Prefect server keeps of the jobs' flow runs as JSON: the runs (parameters, states),
    their task runs, every log line and artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs() if r.parameters.get("job_id") in job_ids]
        assert {r.parameters["job_id"] for r in runs} == set(job_ids)
        ids = [r.id for r in runs]
        chosen = FlowRunFilter(id=FlowRunFilterId(any_=ids))
        logs, offset = [], 0
        while batch := client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), offset=offset):
            logs += batch
            offset += len(batch)
        assert any("completed" in log.message for log in logs)
        records = [*runs, *client.read_task_runs(flow_run_filter=chosen), *logs]
        records += client.read_artifacts(flow_run_filter=chosen)
        return "\n".join(r.model_dump_json() for r in records).encode()


def test_no_key_in_any_published_object_document_log_or_prefect_record(encrypted):
    storage: LocalStorage = encrypted["storage"]
    keys = [
        key
        for job_id, fmt, _ in LADDERS
        for key in all_keys(
            storage, job_id, storage.root / ladder(encrypted["docs"][job_id], fmt)["filePath"]
        ).values()
    ]
    keys.append(
        cenc_key(storage, CHUNKED, storage.root / ladder(encrypted["docs"][CHUNKED], "cmaf")["filePath"])
    )
    assert len(keys) >= 3 + 1 + 2 + 1
    published = [p for p in (storage.root / "files").rglob("*") if p.is_file()]
    documents = [p for p in (storage.root / "jobs").rglob("*") if p.is_file()]
    assert published and documents
    haystacks = {str(p.relative_to(storage.root)): p.read_bytes() for p in [*published, *documents]}
    haystacks["returned documents"] = json.dumps(encrypted["docs"]).encode()
    haystacks["logs"] = "\n".join(encrypted["logs"].lines).encode()
    haystacks["prefect"] = prefect_records((ONE, CHUNKED))
    assert len(encrypted["logs"].lines) > 10
    for name, data in haystacks.items():
        for key in keys:
            forms = key_forms(key) + ([key] if name.startswith("files/") else [])
            assert not any(form in data for form in forms), name
        assert SECRET.encode() not in data, name  # nor the secret that seals the keys


def test_no_secret_no_encryption_the_job_fails_naming_the_setting(prefect_harness, tmp_path, monkeypatch):
    source = make_clip(tmp_path / "s.mp4", 320, 180, seconds=2)
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("VODFLOW_PLAYBACK_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("VODFLOW_KEY_SECRET", raising=False)
    spec = {"videoUrl": str(source), "presets": [{"format": "hls", "resolutions": ["240"],
            "encryption": {"method": "aes-128"}}]}  # fmt: skip
    with pytest.raises(JobFailed) as caught:
        encode_video(spec, job_id="c" * 24)
    error = caught.value.document["error"]
    assert error["code"] == "invalid_config" and "VODFLOW_KEY_SECRET" in error["message"]
    assert not (tmp_path / "data" / "files").exists() or not any((tmp_path / "data" / "files").rglob("*.*"))
