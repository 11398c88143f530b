"""Local storage, key validation and storage settings from the environment (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vodflow.blocks.storage import VodflowStorage, resolve_storage
from vodflow.errors import ConfigError, ObjectNotFound, StorageError
from vodflow.jobs.keys import validate_key
from vodflow.storage.base import Storage
from vodflow.storage.local import LocalStorage
from vodflow.storage.s3 import S3Storage

SECRET = "s3cr3t-" + "z" * 30


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_round_trip_bytes_and_files(storage: LocalStorage, tmp_path: Path):
    source = tmp_path / "clip.bin"
    source.write_bytes(os.urandom(3 << 20))
    storage.upload_file(source, "files/videos/a.mp4", "video/mp4")
    storage.upload_bytes(b'{"id": 1}', "jobs/j1.json")

    assert isinstance(storage, Storage) and storage.kind == "local"
    assert storage.read_bytes("jobs/j1.json") == b'{"id": 1}'
    dest = tmp_path / "out" / "copy.bin"
    storage.download_file("files/videos/a.mp4", dest)
    assert dest.read_bytes() == source.read_bytes()
    assert storage.exists("files/videos/a.mp4") and not storage.exists("files/videos/b.mp4")
    assert not storage.exists("files/videos/a.mp4/x")


def test_overwrite_is_whole_and_leaves_no_temp_files(storage: LocalStorage):
    storage.upload_bytes(b"old", "jobs/j.json")
    storage.upload_bytes(b"new", "jobs/j.json")
    assert storage.read_bytes("jobs/j.json") == b"new"
    assert all_files(storage.root) == ["jobs/j.json"]


def test_failed_upload_leaves_the_old_object_and_no_temp_file(storage: LocalStorage, tmp_path: Path):
    storage.upload_bytes(b"old", "files/videos/a.mp4")
    with pytest.raises(StorageError) as caught:
        storage.upload_file(tmp_path / "missing.mp4", "files/videos/a.mp4")
    assert caught.value.code == "storage_error" and not caught.value.transient
    assert str(tmp_path) not in str(caught.value)  # no host paths in messages
    assert storage.read_bytes("files/videos/a.mp4") == b"old"
    assert all_files(storage.root) == ["files/videos/a.mp4"]


def test_missing_objects(storage: LocalStorage, tmp_path: Path):
    with pytest.raises(ObjectNotFound) as caught:
        storage.read_bytes("jobs/nope.json")
    assert caught.value.code == "not_found" and caught.value.step == "publish" and not caught.value.transient
    with pytest.raises(ObjectNotFound):
        storage.download_file("ingest/nope", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    storage.upload_bytes(b"x", "ingest/dir/file")
    with pytest.raises(ObjectNotFound):
        storage.read_bytes("ingest/dir")
    with pytest.raises(ObjectNotFound):
        storage.size("ingest/dir")
    assert storage.size("ingest/dir/file") == 1


def test_list_is_recursive_sorted_and_a_plain_string_prefix(storage: LocalStorage):
    for key in ["jobs/b.json", "jobs/abc.json", "jobs/ab/x.json", "files/images/i.jpg", "top"]:
        storage.upload_bytes(b"x", key)
    assert storage.list_keys("jobs/") == ["jobs/ab/x.json", "jobs/abc.json", "jobs/b.json"]
    assert storage.list_keys("jobs/ab") == ["jobs/ab/x.json", "jobs/abc.json"]
    assert storage.list_keys("jobs/abc.") == ["jobs/abc.json"]
    assert storage.list_keys("") == sorted(
        ["jobs/b.json", "jobs/abc.json", "jobs/ab/x.json", "files/images/i.jpg", "top"]
    )
    assert storage.list_keys("nothing/here/") == []


def test_delete_is_idempotent_and_prunes_empty_folders(storage: LocalStorage):
    for key in ["files/videos/v1/index.m3u8", "files/videos/v1/360/seg0.ts", "files/videos/v2.mp4"]:
        storage.upload_bytes(b"x", key)
    assert storage.delete_keys(["files/videos/v1/360/seg0.ts", "files/videos/missing.mp4"]) == 2
    assert storage.delete_keys(["files/videos/v1/360/seg0.ts"]) == 1
    assert not (storage.root / "files/videos/v1/360").exists()
    assert storage.delete_prefix("files/videos/v1/") == 1
    assert not (storage.root / "files/videos/v1").exists()
    assert storage.list_keys("files/") == ["files/videos/v2.mp4"]
    assert storage.delete_prefix("files/") == 1
    assert all_files(storage.root) == [] and storage.root.is_dir()
    assert storage.delete_prefix("files/") == 0
    with pytest.raises(StorageError, match="empty prefix"):
        storage.delete_prefix("")


def test_url_is_a_file_uri_of_the_absolute_path(storage: LocalStorage):
    url = storage.url_for("files/images/a b.jpg")
    assert url == (storage.root / "files/images/a b.jpg").as_uri()
    assert url.startswith("file:///") and "a%20b.jpg" in url


def test_url_is_under_the_data_url_when_a_server_publishes_the_directory(tmp_path, monkeypatch):
    served = LocalStorage(tmp_path, public_base_url="http://127.0.0.1:8090/")
    assert served.url_for("files/images/a b.jpg") == "http://127.0.0.1:8090/files/images/a%20b.jpg"
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VODFLOW_DATA_URL", "http://127.0.0.1:8090")
    from vodflow.settings import load_settings

    opened = load_settings().storage_config().open()
    assert opened.url_for("files/videos/x.mp4") == "http://127.0.0.1:8090/files/videos/x.mp4"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "relative"),
        ("../outside", "'..'"),
        ("files/../../outside", "'..'"),
        ("files/./x", "'.'"),
        ("files//x", "empty segments"),
        ("files\\..\\x", "backslash"),
        ("files/a\x00b", "control"),
        ("files/a\nb", "control"),
        ("x" * 1025, "1024 bytes"),
        ("é" * 513, "1024 bytes"),
    ],
)
def test_unsafe_keys_are_refused(storage: LocalStorage, key: str, reason: str):
    with pytest.raises(StorageError, match=reason) as caught:
        validate_key(key)
    assert caught.value.code == "invalid_key" and not caught.value.transient
    for call in (
        lambda: storage.upload_bytes(b"x", key),
        lambda: storage.read_bytes(key),
        lambda: storage.exists(key),
        lambda: storage.delete_keys([key]),
        lambda: storage.url_for(key),
    ):
        with pytest.raises(StorageError):
            call()
    assert all_files(storage.root.parent) == []


@pytest.mark.parametrize(
    "key", ["files/videos/abc.mp4", "ingest/vid-123.", "jobs/", "a b/ü.mp4", "x" * 1024, ".hidden"]
)
def test_safe_keys_pass(key: str):
    assert validate_key(key) == key


def test_folders_are_not_objects(storage: LocalStorage):
    with pytest.raises(StorageError, match="folder"):
        storage.upload_bytes(b"x", "jobs/")


def test_symlinks_cannot_lead_outside_the_root(storage: LocalStorage, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / "link").symlink_to(outside)
    with pytest.raises(StorageError, match="outside the storage root"):
        storage.upload_bytes(b"x", "link/evil")
    assert list(outside.iterdir()) == []


# Settings from the environment.


def storage_from(environment, values: dict[str, str]):
    """The storage the settings of exactly `values` describe."""
    return environment(values).storage_config().open()


def test_local_is_the_default_with_data_dir_resolved(tmp_path: Path, monkeypatch, environment):
    monkeypatch.chdir(tmp_path)
    default = storage_from(environment, {})
    assert isinstance(default, LocalStorage) and default.root == tmp_path / "data"
    relative = storage_from(environment, {"VODFLOW_STORAGE": "local", "VODFLOW_DATA_DIR": "store/x"})
    assert relative.root == tmp_path / "store/x" and relative.root.is_dir()


S3_ENV = {
    "VODFLOW_STORAGE": "s3",
    "VODFLOW_S3_ENDPOINT": "127.0.0.1:9000",
    "VODFLOW_S3_ACCESS_KEY": "access",
    "VODFLOW_S3_SECRET_KEY": SECRET,
}


def test_s3_settings(environment):
    storage = storage_from(environment, S3_ENV)
    assert isinstance(storage, S3Storage) and storage.kind == "s3"
    assert storage.bucket == "vodflow"
    assert storage.url_for("files/a.mp4") == "http://127.0.0.1:9000/vodflow/files/a.mp4"
    assert SECRET not in repr(storage)

    tls = storage_from(environment, {**S3_ENV, "VODFLOW_S3_SECURE": "true", "VODFLOW_S3_BUCKET": "media"})
    assert tls.url_for("a") == "https://127.0.0.1:9000/media/a"
    public = storage_from(environment, {**S3_ENV, "VODFLOW_S3_PUBLIC_URL": "https://cdn.example.com/vod/"})
    assert public.url_for("files/a.mp4") == "https://cdn.example.com/vod/files/a.mp4"


@pytest.mark.parametrize(
    ("endpoint", "secure_flag", "url"),
    [
        ("https://s3.example.com", "false", "https://s3.example.com/vodflow/k"),
        ("http://127.0.0.1:9000/", "true", "http://127.0.0.1:9000/vodflow/k"),
        ("s3.example.com:443", "1", "https://s3.example.com:443/vodflow/k"),
    ],
)
def test_an_endpoint_url_scheme_sets_tls(endpoint: str, secure_flag: str, url: str, environment):
    env = {**S3_ENV, "VODFLOW_S3_ENDPOINT": endpoint, "VODFLOW_S3_SECURE": secure_flag}
    assert storage_from(environment, env).url_for("k") == url


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"VODFLOW_S3_ENDPOINT": ""}, "VODFLOW_S3_ENDPOINT"),
        ({"VODFLOW_S3_ACCESS_KEY": " "}, "VODFLOW_S3_ACCESS_KEY"),
        ({"VODFLOW_S3_SECRET_KEY": ""}, "VODFLOW_S3_SECRET_KEY"),
        ({"VODFLOW_S3_ENDPOINT": "ftp://host:21"}, "S3 endpoint"),
        ({"VODFLOW_S3_ENDPOINT": "http://host:9000/path"}, "S3 endpoint"),
    ],
)
def test_bad_settings_name_the_variable(changes: dict[str, str], named: str, environment):
    with pytest.raises(StorageError, match=named) as caught:
        storage_from(environment, {**S3_ENV, **changes})
    assert caught.value.code == "invalid_storage_config"
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "named"),
    [({"VODFLOW_S3_SECURE": "maybe"}, "VODFLOW_S3_SECURE"), ({"VODFLOW_STORAGE": "ftp"}, "VODFLOW_STORAGE")],
)
def test_malformed_settings_are_refused_when_read(changes: dict[str, str], named: str, environment):
    with pytest.raises(ConfigError, match=named) as caught:
        environment({**S3_ENV, **changes})
    assert caught.value.code == "invalid_config" and SECRET not in str(caught.value)


def test_a_named_block_wins_then_the_block_variable_then_the_settings(
    monkeypatch, tmp_path: Path, environment
):
    loaded = []

    def fake_load(name: str, **kwargs):
        loaded.append(name)
        return VodflowStorage(data_dir=str(tmp_path / name))

    monkeypatch.setattr(VodflowStorage, "load", fake_load)
    plain = environment({"VODFLOW_STORAGE": "local", "VODFLOW_DATA_DIR": str(tmp_path / "env")})
    assert resolve_storage(None, plain).root == tmp_path / "env"
    named = environment({"VODFLOW_DATA_DIR": str(tmp_path / "env"), "VODFLOW_STORAGE_BLOCK": "from-var"})
    assert resolve_storage(None, named).root == tmp_path / "from-var"
    assert resolve_storage("given", named).root == tmp_path / "given"
    assert loaded == ["from-var", "given"]
