"""The pipeline steps as plain functions (ingest, thumbnails, publish, the temp directory); `tasks/` wraps
them as Prefect tasks."""
