"""Encoders, chosen by name from one registry: `local` (one ffmpeg process, or `chunked` for long sources
when chunking is on), `videosdk` and `mpc` (remote services). Each loads on first use, so a local job never
imports the remote services' clients."""

from __future__ import annotations

from importlib import import_module

from vodflow.encoders.base import EncodeOptions, Encoder, EncodeRequest, EncodeResult, InlineSteps, Steps
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import SourceInfo
from vodflow.media.chunking import should_chunk

REGISTRY = {
    "local": "vodflow.encoders.local:OneProcessEncoder",
    "chunked": "vodflow.encoders.chunked:ChunkedEncoder",
    "videosdk": "vodflow.encoders.videosdk:VideoSDKEncoder",
    "mpc": "vodflow.encoders.mpc:MpcEncoder",
}

__all__ = ["EncodeOptions", "EncodeRequest", "EncodeResult", "Encoder", "InlineSteps", "Steps", "get_encoder"]


def get_encoder(
    name: str,
    source: SourceInfo | None = None,
    chunk_threshold: float = 0.0,
    plan: OutputPlan | None = None,
) -> Encoder:
    """The encoder registered as `name`; `local` becomes `chunked` for a `source` longer than
    `chunk_threshold` seconds (0: never), whatever the `plan` asks for (both make every local output).
    ValueError for an unknown name."""
    long_source = source is not None and should_chunk(source.duration, chunk_threshold)
    if name == "local" and long_source:
        name = "chunked"
    if name not in REGISTRY:
        raise ValueError(f"encoder: unknown {name!r}; known: {', '.join(REGISTRY)}")
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(import_module(module), cls)()
