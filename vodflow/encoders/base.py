"""One way in for every encoder: the `Encoder` protocol, what it is given and returns, and the registry.

An encoder turns a job into outputs. Local encoders (one ffmpeg process, or chunks side by side) write them
into the run's temp directory for the publish step, from a source the flow has ingested and planned; remote
encoders (VideoSDK, Huawei MPC) fetch the source themselves and return published files. Encoders do their
retryable units of work through `Steps`, which the flow provides: Prefect tasks there, plain calls elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from vodflow.jobs.document import FileEntry, JobDocument
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.media.captions import CaptionLimits
from vodflow.orchestration.concurrency import Slots
from vodflow.packaging.hls import FIRST_SEGMENT_SECONDS
from vodflow.storage.scratch import Scratch

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One unit of work: `fn(*args)`, shown as `name` (its kind) and `label` (this one) in the run."""

    name: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    label: str = ""


Done = Callable[[int, Any], None]  # a parallel call's index and result, told as soon as it has succeeded


class Steps(Protocol):
    """Runs an encoder's units of work: `run` one, or `parallel` several side by side (results in order,
    every call finished before the first failure is raised; `on_done`, when given, is told of each call that
    succeeded as soon as it has, in the caller's thread)."""

    def run(self, name: str, fn: Callable[..., T], *args: Any) -> T: ...

    def parallel(self, calls: Sequence[Call], on_done: Done | None = None) -> list[Any]: ...


class InlineSteps:
    """`Steps` as plain calls, one after the other (scripts, tests)."""

    def run(self, name: str, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def parallel(self, calls: Sequence[Call], on_done: Done | None = None) -> list[Any]:
        results = []
        for index, call in enumerate(calls):
            results.append(call.fn(*call.args))
            if on_done is not None:
                on_done(index, results[-1])
        return results


@dataclass(frozen=True)
class EncodeOptions:
    """How local encodes run: x264, x265 and SVT-AV1 presets, time bounds, ffmpeg slots, chunk length, what
    the subtitle renditions may come to, and the short first segments of MPEG-TS ladders (0: none)."""

    x264_preset: str = "veryfast"
    x265_preset: str = "faster"
    svtav1_preset: int = 10
    max_encode_seconds: float = 12 * 3600.0
    stall_seconds: float = 120.0
    slots: Slots = field(default_factory=Slots)
    chunk_seconds: int = 30
    report_progress: bool = True
    captions: CaptionLimits = field(default_factory=CaptionLimits)
    first_segment_seconds: int = FIRST_SEGMENT_SECONDS

    def first_segment(self, plan: OutputPlan) -> int:
        """The short first segments' length for `plan`'s MPEG-TS ladders: none for a job with captions, whose
        subtitle renditions are cut on the 6 s grid from 0 and must be cut like the video."""
        return 0 if plan.captions else self.first_segment_seconds


LiveContext = Callable[[], AbstractContextManager[object]]


@dataclass
class EncodeRequest:
    """What an encoder is given. Local encoders read `source` and `plan` and write under `workdir`; remote
    ones read `doc` and their service `account` (a credentials block, or any object with its methods).

    `live`, where given, makes what publishes HLS and CMAF ladders while they encode
    (`steps.live.LivePublisher`): the one-process encode runs ffmpeg inside it and writes EVENT playlists;
    other encoders ignore it.

    `scratch`, when set, is where a chunked encode's pieces travel (the job's storage), not `workdir`.
    """

    doc: JobDocument
    workdir: Path
    steps: Steps = field(default_factory=InlineSteps)
    options: EncodeOptions = field(default_factory=EncodeOptions)
    source: Source | None = None
    plan: OutputPlan | None = None
    account: Any = None
    live: LiveContext | None = None
    scratch: Scratch | None = None
    poll_interval: float = 5.0
    max_wait: float = 3600.0

    def with_source(self, source: Source, plan: OutputPlan) -> EncodeRequest:
        """This request for a local encoder, once the source is ingested and planned."""
        return replace(self, source=source, plan=plan)


@dataclass
class EncodeResult:
    """What an encoder made: for a remote encoder, the published files and the remote job's id; for a local
    one, nothing here (its outputs wait under the request's `workdir` for the publish step)."""

    files: list[FileEntry] | None = None
    remote_id: str | None = None


class Encoder(Protocol):
    """A way of encoding; `local` encoders need the flow to ingest and plan first."""

    name: ClassVar[str]
    local: ClassVar[bool]

    def encode(self, request: EncodeRequest) -> EncodeResult: ...
