"""Content keys kept in a real S3 bucket (SeaweedFS): outside the tree anonymous clients may read (`files/`)
and sealed, so even a bucket readable as a whole would hand out no key; read back and removed with the
job."""

from __future__ import annotations

import base64

import httpx
from pydantic import SecretStr

from tests.s3server import PUBLIC_BUCKET
from vodflow.keys.provider import content_keys_key, key_provider, read_content_key, remove_content_keys
from vodflow.settings import Settings
from vodflow.storage.s3 import S3Storage

SECRET = "q" * 40


def test_keys_in_a_readable_bucket_are_sealed_and_go_with_the_job(s3_server):
    storage = S3Storage(s3_server.client(), PUBLIC_BUCKET)
    settings = Settings(key_secret=SecretStr(SECRET))

    keys = key_provider(storage, settings).keys_for("s3-keys-job", ["ladder/0", "ladder/1"])
    anonymous = httpx.get(storage.url_for(content_keys_key("s3-keys-job")), timeout=10)
    assert anonymous.status_code == 403  # the published tree is readable, the keys are not...
    stored = storage.read_bytes(content_keys_key("s3-keys-job"))
    for key in keys:  # ...and whoever reads the bucket finds no key in the record, in any form
        forms = [key.key, key.key.hex().encode(), base64.b64encode(key.key), base64.b64encode(key.key)[:-2]]
        assert not any(form in stored for form in forms)
        assert read_content_key(storage, settings, "s3-keys-job", key.kid_hex) == key.key
    other = Settings(key_secret=SecretStr("z" * 40))  # the stored record opens with its own secret only
    assert read_content_key(storage, other, "s3-keys-job", keys[0].kid_hex) is None
    remove_content_keys(storage, "s3-keys-job")
    assert not storage.exists(content_keys_key("s3-keys-job"))
    assert read_content_key(storage, settings, "s3-keys-job", keys[0].kid_hex) is None
