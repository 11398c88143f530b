"""What a job asks ffmpeg to do, counted before any of it is done: the encoders of one ffmpeg process, the
thumbnail images and the pixels encoded; `JobTooLarge` (`job_too_large`) above the limits.

Checked twice: on the spec alone where a job enters (CLI, API, flow), as if its source kept every rung and had
one audio track; and on the plan once the source is probed (its audio tracks, duration and frame rate known).
"""

from __future__ import annotations

import math

from vodflow.errors import SpecError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.limits import Limits
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import JobSpec

# A source that keeps every rung a spec lists (4K, 16:9), with one audio track: what a spec asks for itself.
ANY_SOURCE = SourceInfo(
    duration=math.inf,
    width=3840,
    height=2160,
    rotation=0,
    has_audio=True,
    video_codec="",
    format_name="",
    frame_rate=0.0,
)
# The frame rate assumed of a source whose rate ffprobe could not tell.
DEFAULT_FRAME_RATE = 30.0


class JobTooLarge(SpecError):
    """The job would cost more than a limit allows: `field` names what asks for it, the reason the setting."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.code = "job_too_large"


def process_encoders(plan: OutputPlan, has_audio: bool) -> int:
    """The audio and video encoders of the one-process encode of `plan` (`media.commands`): a video encoder
    per rung, HLS rung and MP4 (but an MP4 the size of an HLS rung, remuxed from it), an audio encoder per
    HLS rung, MP4, CMAF audio track and audio-only variant. Each process of a chunked encode runs fewer."""
    rungs = {r for out in plan.hls for r in out.renditions}
    encoded_mp4s = [out for out in plan.mp4 if out.rendition not in rungs]
    video = sum(len(out.renditions) for out in (*plan.hls, *plan.cmaf)) + len(encoded_mp4s)
    if not has_audio:
        return video
    shared_audio = {out.rendition.audio_kbps for out in plan.mp4 if out.rendition in rungs}
    audio = sum(len(out.renditions) + bool(out.audio_only_kbps) for out in plan.hls)
    audio += sum(len(out.audio) + bool(out.audio_only_kbps) for out in plan.cmaf)
    return video + audio + len(encoded_mp4s) + len(shared_audio)


def plan_pixels(plan: OutputPlan, source: SourceInfo) -> float:
    """The pixels the plan's video encoders encode: width x height of each, x the source's frame rate and
    duration."""
    rungs = {r for out in plan.hls for r in out.renditions}
    renditions = [r for out in (*plan.hls, *plan.cmaf) for r in out.renditions]
    renditions += [out.rendition for out in plan.mp4 if out.rendition not in rungs]
    frames = (source.frame_rate if source.frame_rate > 0 else DEFAULT_FRAME_RATE) * source.duration
    return sum(r.width * r.height for r in renditions) * frames


def check_plan_size(plan: OutputPlan, source: SourceInfo, limits: Limits) -> None:
    """JobTooLarge naming the setting when the plan needs more encoders in one ffmpeg process, more
    thumbnail images or more pixels encoded than `limits` allow."""
    encoders = process_encoders(plan, source.has_audio)
    if encoders > limits.max_encoders:
        raise JobTooLarge(
            "presets",
            f"the job needs {encoders} audio and video encoders in one ffmpeg process; the limit is "
            f"{limits.max_encoders} (VODFLOW_MAX_ENCODERS)",
        )
    if len(plan.thumbnails) > limits.max_thumbnails:
        raise JobTooLarge(
            "thumbnails",
            f"the job makes {len(plan.thumbnails)} thumbnail images (timestamps x resolutions x formats x "
            f"filters); the limit is {limits.max_thumbnails} (VODFLOW_MAX_THUMBNAILS)",
        )
    if math.isfinite(source.duration) and (pixels := plan_pixels(plan, source)) > limits.max_job_pixels:
        raise JobTooLarge(
            "presets",
            f"the job would encode {pixels:.3g} pixels (its renditions over the {source.duration:.0f} s "
            f"source); the limit is {limits.max_job_pixels:.3g} (VODFLOW_MAX_JOB_PIXELS)",
        )


def check_spec_size(spec: JobSpec, limits: Limits) -> None:
    """JobTooLarge when the spec alone asks for more than `limits` allow, whatever its source: planned as if
    the source kept every rung and had one audio track (`ANY_SOURCE`), its duration not known yet."""
    plan = plan_outputs(JobDocument.from_spec(spec, "size"), ANY_SOURCE)
    check_plan_size(plan, ANY_SOURCE, limits)
