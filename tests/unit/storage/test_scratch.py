"""Scratch keys (pure), bounded downloads of local storage, the scratch space's put/fetch/clear, and the
`VODFLOW_CHUNK_TRANSFER` default."""

from __future__ import annotations

import pickle

import pytest
from pydantic import SecretStr

from vodflow.errors import SpecError, StorageError
from vodflow.jobs.keys import chunk_scratch_key, scratch_prefix
from vodflow.storage.config import StorageConfig
from vodflow.storage.local import LocalStorage
from vodflow.storage.scratch import Scratch, ScratchObject

DASK = "tcp://dask:8786"


def test_scratch_keys_are_job_scoped_and_apart_from_published_ones():
    assert scratch_prefix("job-1") == "tmp/job-1/"
    assert chunk_scratch_key("job-1", "00002-426x240-400k.ts") == "tmp/job-1/chunks/00002-426x240-400k.ts"
    assert chunk_scratch_key("job-1", "audio-128k.m4a").startswith(scratch_prefix("job-1"))
    for published in ("files/", "jobs/", "ingest/"):
        assert not scratch_prefix("job-1").startswith(published)


@pytest.mark.parametrize("name", ["a/b.ts", "..", "", "x\ny"])
def test_a_scratch_name_is_one_safe_file_name(name):
    with pytest.raises(StorageError) as caught:
        chunk_scratch_key("job-1", name)
    assert caught.value.code == "invalid_key"


def test_a_scratch_prefix_needs_a_valid_job_id():
    with pytest.raises(SpecError):
        scratch_prefix("../other")


def test_local_downloads_stop_past_max_bytes(tmp_path):
    storage = LocalStorage(tmp_path / "data")
    storage.upload_bytes(b"x" * 100, "a/b")
    storage.download_file("a/b", tmp_path / "exact", max_bytes=100)
    assert (tmp_path / "exact").read_bytes() == b"x" * 100
    with pytest.raises(StorageError) as caught:
        storage.download_file("a/b", tmp_path / "short", max_bytes=99)
    assert caught.value.code == "too_large" and "a/b" in caught.value.message
    assert list(tmp_path.iterdir()) == [tmp_path / "data", tmp_path / "exact"], "no partial file is left"


def test_put_fetch_and_clear(tmp_path):
    scratch = Scratch(StorageConfig(kind="local", data_dir=tmp_path / "data"), "job-1")
    storage = scratch.open()
    storage.upload_bytes(b"published", "files/videos/job-1.mp4")
    (tmp_path / "piece.ts").write_bytes(b"p" * 10)
    item = scratch.put(storage, tmp_path / "piece.ts")
    assert item == ScratchObject("piece.ts", 10)
    assert storage.list_keys(scratch.prefix) == ["tmp/job-1/chunks/piece.ts"]
    (tmp_path / "there").mkdir()
    assert scratch.fetch(storage, item, tmp_path / "there").read_bytes() == b"p" * 10

    storage.upload_bytes(b"p" * 11, "tmp/job-1/chunks/piece.ts")  # replaced: more than was put
    with pytest.raises(StorageError) as caught:
        scratch.fetch(storage, item, tmp_path / "there")
    assert caught.value.code == "too_large"
    storage.upload_bytes(b"p" * 9, "tmp/job-1/chunks/piece.ts")
    with pytest.raises(StorageError) as caught:
        scratch.fetch(storage, item, tmp_path / "there")
    assert caught.value.code == "truncated" and not (tmp_path / "there" / "piece.ts").exists()

    assert scratch.clear() == 1
    assert storage.list_keys("") == ["files/videos/job-1.mp4"], "only the job's scratch objects go"


def test_a_scratch_value_pickles_and_never_shows_the_secret():
    secret = "s3-secret-never-shown"
    config = StorageConfig(kind="s3", endpoint="127.0.0.1:9", access_key="ak", secret_key=SecretStr(secret))
    scratch = Scratch(config, "job-1")
    assert secret not in repr(scratch) and secret not in str(scratch)
    restored = pickle.loads(pickle.dumps(scratch))
    assert restored.config.secret_key.get_secret_value() == secret  # a worker can open the storage


@pytest.mark.parametrize(
    ("values", "kind", "mode"),
    [
        ({}, "s3", "shared-dir"),
        ({"VODFLOW_DASK_ADDRESS": DASK}, "s3", "storage"),
        ({"VODFLOW_DASK_ADDRESS": DASK}, "local", "shared-dir"),
        ({"VODFLOW_DASK_ADDRESS": DASK, "VODFLOW_CHUNK_TRANSFER": "shared-dir"}, "s3", "shared-dir"),
        ({"VODFLOW_CHUNK_TRANSFER": "storage"}, "s3", "storage"),
    ],
)
def test_chunk_transfer_default(values, kind, mode, environment):
    assert environment(values).chunk_transfer_mode(kind) == mode


def test_a_bad_chunk_transfer_is_named(environment):
    from vodflow.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        environment({"VODFLOW_CHUNK_TRANSFER": "nfs"})
    assert "VODFLOW_CHUNK_TRANSFER" in caught.value.message
