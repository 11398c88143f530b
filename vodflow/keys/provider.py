"""Where the content keys of encrypted ladders come from and are kept.

`KeyProvider` is what encrypting needs: `keys_for(job_id, labels)` hands out one new `ContentKey` (a random
16-byte key id and 16-byte key) per label and keeps them, `read(job_id, kid)` finds one again (the key
endpoint), `remove(job_id)` forgets a job's keys (deleted with the job). `StoredKeyProvider`, the default,
generates them with `secrets` and keeps them in the job's storage at `keys/<job id>.json` (apart from
`files/`, so never public), each key sealed with AES-256-GCM under a key-encryption key derived (HKDF-SHA256)
from `VODFLOW_KEY_SECRET`; the job id and key id are the sealing's associated data, so a sealed key copied
into another job's file or under another id does not open. Without a secret nothing is encrypted:
`key_provider` raises ConfigError naming the setting.

A key server (CPIX/SPEKE style, e.g. in front of Widevine/PlayReady/FairPlay services) plugs in as another
`KeyProvider`: `vodflow.keys.server.KeyServerProvider` (VODFLOW_KEY_SERVER_URL) POSTs the job id and labels
over HTTPS through the address guard and gets key ids and keys back, asks it for one key, and tells it when
the job is gone.

A `ContentKey` never prints its key (`repr` shows the kid only): keys go to no log, document, artifact or
Prefect parameter.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from vodflow.errors import ConfigError, SpecError, StorageError
from vodflow.jobs.keys import check_job_id, object_key
from vodflow.storage.base import Storage

if TYPE_CHECKING:
    from vodflow.settings import Settings

KEYS_PREFIX = "keys/"  # never under `files/`: the file server and public URLs do not reach it
KEY_BYTES = 16
MIN_KEY_SECRET_LENGTH = 32
SECRET_SETTING = "VODFLOW_KEY_SECRET"
MAX_KEYS_PER_JOB = 100_000
_FORMAT = 1
_NONCE_BYTES = 12
_KID = re.compile(r"^[0-9a-f]{32}$")


def content_keys_key(job_id: str) -> str:
    """`keys/<job id>.json`: where a job's sealed content keys are kept."""
    return object_key(f"{KEYS_PREFIX}{check_job_id(job_id)}.json")


@dataclass(frozen=True, repr=False)
class ContentKey:
    """One content key: its id (`kid`, public: it names the key in URIs and manifests) and the key itself."""

    kid: bytes
    key: bytes = field(repr=False)
    label: str = ""

    def __post_init__(self) -> None:
        if len(self.kid) != KEY_BYTES or len(self.key) != KEY_BYTES:
            raise ValueError("a content key and its id are 16 bytes each")

    def __repr__(self) -> str:
        return f"ContentKey(kid={self.kid.hex()}, label={self.label!r}, key=**********)"

    @property
    def kid_hex(self) -> str:
        return self.kid.hex()

    @classmethod
    def generate(cls, label: str = "") -> ContentKey:
        return cls(secrets.token_bytes(KEY_BYTES), secrets.token_bytes(KEY_BYTES), label)


class KeyProvider(Protocol):
    """Hands out, finds and forgets the content keys of a job (see the module's docstring)."""

    def keys_for(self, job_id: str, labels: Sequence[str]) -> list[ContentKey]:
        """One new key per label, in order, kept for `read`; replaces the job's earlier keys."""
        ...

    def read(self, job_id: str, kid: str) -> bytes | None:
        """The key with id `kid` (32 hex digits) of the job, or None when there is none."""
        ...

    def remove(self, job_id: str) -> None:
        """Forget every key of the job (gone already is fine)."""
        ...


def check_key_secret(secret: str) -> str:
    """`secret` when it is long enough to derive a key-encryption key from; ValueError (never quoting it)."""
    if len(secret.strip()) < MIN_KEY_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_KEY_SECRET_LENGTH} characters long")
    return secret.strip()


class StoredKeyProvider:
    """Keys generated here and kept sealed (AES-256-GCM) in the job's storage under `keys/`."""

    def __init__(self, storage: Storage, secret: SecretStr | str) -> None:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        try:
            value = check_key_secret(value)
        except ValueError as exc:
            raise ConfigError(f"{SECRET_SETTING}: {exc}") from None
        kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vodflow content keys v1")
        self._aead = AESGCM(kdf.derive(value.encode()))
        self.storage = storage

    def __repr__(self) -> str:
        return "StoredKeyProvider(secret=**********)"

    def keys_for(self, job_id: str, labels: Sequence[str]) -> list[ContentKey]:
        if not 0 < len(labels) <= MAX_KEYS_PER_JOB:
            raise ValueError(f"between 1 and {MAX_KEYS_PER_JOB} keys a job")
        keys = [ContentKey.generate(label) for label in labels]
        entries = [
            {"kid": k.kid_hex, "label": k.label, "sealed": self._seal(job_id, k.kid_hex, k.key)} for k in keys
        ]
        body = json.dumps({"format": _FORMAT, "jobId": job_id, "keys": entries}).encode()
        self.storage.upload_bytes(body, content_keys_key(job_id), content_type="application/json")
        return keys

    def read(self, job_id: str, kid: str) -> bytes | None:
        if not _KID.match(kid):
            return None
        try:
            record = json.loads(self.storage.read_bytes(content_keys_key(job_id)))
        except StorageError as exc:
            if exc.code == "not_found":
                return None
            raise
        except ValueError:
            return None
        entries = record.get("keys") if isinstance(record, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("kid") == kid and isinstance(entry.get("sealed"), str):
                return self._open(job_id, kid, entry["sealed"])
        return None

    def remove(self, job_id: str) -> None:
        self.storage.delete_keys([content_keys_key(job_id)])

    def _seal(self, job_id: str, kid: str, key: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key, f"{job_id}/{kid}".encode())
        return base64.b64encode(nonce + sealed).decode()

    def _open(self, job_id: str, kid: str, sealed: str) -> bytes | None:
        """The key, or None when it does not open (another secret, another job or kid, altered)."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            key = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], f"{job_id}/{kid}".encode())
        except (ValueError, InvalidTag):
            return None
        return key if len(key) == KEY_BYTES else None


def key_provider(storage: Storage, settings: Settings) -> KeyProvider:
    """The provider `settings` configure: a key server at VODFLOW_KEY_SERVER_URL (`vodflow.keys.server`),
    else vodflow's own keys in `storage`, sealed with VODFLOW_KEY_SECRET; ConfigError naming the setting when
    there is neither (nothing is encrypted without one)."""
    if settings.key_server_url:
        from vodflow.keys.server import KeyServerProvider

        try:
            return KeyServerProvider(
                settings.key_server_url, settings.net_policy(), settings.key_server_token
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if settings.key_secret is None or not settings.key_secret.get_secret_value().strip():
        raise ConfigError(f"{SECRET_SETTING} is not set: encrypted presets need a key-encryption secret")
    return StoredKeyProvider(storage, settings.key_secret)


def read_content_key(storage: Storage, settings: Settings, job_id: str, kid: str) -> bytes | None:
    """The 16-byte content key `kid` (32 lower-case hex digits) of job `job_id`, or None when the job has no
    such key (or an id is malformed): what the key and ClearKey license endpoints serve. ConfigError when
    no VODFLOW_KEY_SECRET is set."""
    try:
        check_job_id(job_id)
    except SpecError:  # a malformed id is simply not found
        return None
    return key_provider(storage, settings).read(job_id, kid)


def remove_content_keys(storage: Storage, job_id: str) -> None:
    """Delete a job's sealed keys (with the job); no secret needed, gone already is fine."""
    storage.delete_keys([content_keys_key(job_id)])
