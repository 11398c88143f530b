"""vodflow: a self-hosted video-on-demand pipeline on Prefect 3. The layers: docs/architecture.md."""
