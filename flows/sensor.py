"""The polling sensor as a flow: one `vodflow.video.uploaded` event per new object
(`vodflow.uploads.sensor`)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from vodflow.blocks.storage import resolve_storage
from vodflow.jobs.keys import INGEST_PREFIX
from vodflow.settings import load_settings
from vodflow.uploads.announce import send_events_sync
from vodflow.uploads.sensor import announce_new_objects


@flow(name="vodflow-sensor")
def watch_ingest(
    storage_block: str | None = None, prefix: str = INGEST_PREFIX, max_events: int = 500
) -> list[str]:
    """Announce objects that appeared under `prefix` since the last run; returns their keys.

    `storage_block` names a `vodflow-storage` block; without it the VODFLOW_STORAGE* environment applies.
    """
    logger = get_run_logger()
    storage = resolve_storage(storage_block, load_settings())
    keys = announce_new_objects(storage, send_events_sync, prefix, max_events)
    for key in keys:
        logger.info("announced %r", key)
    logger.info("%d new object(s) under %r", len(keys), prefix)
    return keys
