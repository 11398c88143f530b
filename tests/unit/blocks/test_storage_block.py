"""The storage block: Prefect's block standards, the storage and client it hands out, no leaked secret."""

from __future__ import annotations

from pathlib import Path

import minio
import pytest

from vodflow.blocks.storage import VodflowStorage
from vodflow.errors import StorageError
from vodflow.storage.local import LocalStorage
from vodflow.storage.s3 import S3Storage

SECRET = "block-secret-" + "q" * 30


def test_slug_and_registration():
    import blocks

    assert VodflowStorage.get_block_type_slug() == "vodflow-storage"
    assert blocks.VodflowStorage is VodflowStorage


def test_local_by_default(tmp_path: Path):
    storage = VodflowStorage(data_dir=str(tmp_path / "data")).get_storage()
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "data"


def test_s3_storage_and_client():
    block = VodflowStorage(
        kind="s3",
        endpoint="https://s3.example.com:9000",
        access_key="access",
        secret_key=SECRET,
        bucket="media",
        public_base_url="https://cdn.example.com/vod",
    )
    storage = block.get_storage()
    assert isinstance(storage, S3Storage) and storage.bucket == "media"
    assert storage.endpoint == "s3.example.com:9000" and storage.secure
    assert storage.url_for("files/a.mp4") == "https://cdn.example.com/vod/files/a.mp4"
    assert isinstance(block.get_client(), minio.Minio)
    plain = VodflowStorage(
        kind="s3", endpoint="127.0.0.1:9000", access_key="a", secret_key=SECRET, secure=True
    )
    assert plain.get_storage().url_for("k") == "https://127.0.0.1:9000/vodflow/k"
    for shown in (repr(block), str(block.model_dump()), block.model_dump_json()):
        assert SECRET not in shown


def test_missing_s3_settings_are_named():
    block = VodflowStorage(kind="s3", endpoint="127.0.0.1:9000")
    for call in (block.get_storage, block.get_client):
        with pytest.raises(StorageError, match="access_key, secret_key") as caught:
            call()
        assert caught.value.code == "invalid_storage_config"
