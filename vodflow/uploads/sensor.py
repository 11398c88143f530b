"""Polling sensor for stores without notifications: one `vodflow.video.uploaded` event per new object.

Each run lists the ingest prefix and announces what it has not announced before. What it has seen is
kept as a JSON object in the same storage (`state/sensor-<prefix>.json`, a list of keys): it lives with
the data it describes, has no size limit (a Prefect Variable holds 5,000 characters) and survives
server rebuilds. A key is recorded only after the server has its event, so a crash may announce an
object twice but never skips one; keys that disappear from the prefix are forgotten, so an object
deleted and uploaded again is announced again. Runs of one sensor deployment must not overlap
(prefect.yaml gives it a concurrency limit of 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from vodflow.errors import ObjectNotFound
from vodflow.jobs.keys import INGEST_PREFIX
from vodflow.storage.base import Storage
from vodflow.uploads.events import LOCAL_BUCKET, UploadEvent, prefect_event

STATE_PREFIX = "state/"
MAX_EVENTS_PER_REQUEST = 100

Sender = Callable[[list[dict[str, Any]]], None]


def state_key(prefix: str) -> str:
    """Where the sensor watching `prefix` keeps the keys it has announced."""
    return f"{STATE_PREFIX}sensor-{re.sub(r'[^A-Za-z0-9]+', '-', prefix).strip('-')}.json"


def storage_bucket(storage: Storage) -> str:
    """The bucket a storage writes to, or `local` for local storage."""
    return str(getattr(storage, "bucket", None) or LOCAL_BUCKET)


def load_seen(storage: Storage, key: str) -> set[str]:
    """The keys announced so far (empty on the first run)."""
    try:
        data = json.loads(storage.read_bytes(key))
    except ObjectNotFound:
        return set()
    return set(data.get("keys", []))


def save_seen(storage: Storage, key: str, seen: set[str]) -> None:
    body = json.dumps({"keys": sorted(seen)}, indent=1).encode()
    storage.upload_bytes(body, key, content_type="application/json")


def announce_new_objects(
    storage: Storage, send: Sender, prefix: str = INGEST_PREFIX, limit: int | None = None
) -> list[str]:
    """Send one upload event per object under `prefix` not announced before; returns the new keys.

    `prefix` must lie under `ingest/` (objects become `videoId` jobs). At most `limit` objects per call
    (the rest wait for the next run). Raises what `send` raises, after recording the keys already sent.
    """
    if not prefix.startswith(INGEST_PREFIX):
        raise ValueError(f"prefix must be under {INGEST_PREFIX!r}, got {prefix!r}")
    bucket = storage_bucket(storage)
    key = state_key(prefix)
    present = [k for k in storage.list_keys(prefix) if not k.endswith("/")]
    seen = load_seen(storage, key) & set(present)
    new = [k for k in sorted(present) if k not in seen][:limit]
    announced: list[str] = []
    try:
        for start in range(0, len(new), MAX_EVENTS_PER_REQUEST):
            batch = new[start : start + MAX_EVENTS_PER_REQUEST]
            send([prefect_event(UploadEvent(bucket=bucket, key=k, source="sensor")) for k in batch])
            announced += batch
    finally:
        save_seen(storage, key, seen | set(announced))
    return announced
