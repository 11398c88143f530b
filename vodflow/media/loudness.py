"""EBU R128 loudness normalization, planned purely: the measuring commands, their log's figures, and the
filters that bring a stream to the target (nothing here runs a process).

Two passes. The first measures each audio stream of the source with `loudnorm` (`print_format=json`); the
second applies what that measure says to every encode of the stream: one linear gain (`volume`) when
the stream's true peak, raised by it, stays under the ceiling less `CODEC_HEADROOM_DB`, else `loudnorm`
given the measured values (`linear=true`: a linear gain where it can, else dynamic, with the peaks limited).
A chunked encode measures the whole source once, before any chunk: each track gets the same filters, however
it is cut. Every audio output is measured again after the encode, on what the encoder wrote.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ffmpeg

from vodflow.jobs.filters import LoudnessMeasure, LoudnessPlan
from vodflow.media.inputs import SOURCE_DEMUXERS, concat_url, file_url, input_options

# AAC (like every lossy codec) rebuilds peaks a little above the ones it was given: the second pass aims
# this far under the ceiling, so the encoded output stays under it.
CODEC_HEADROOM_DB = 1.0
SILENCE_LUFS = -70.0  # EBU R128's absolute gate: a stream this quiet is left as it is (no gain to reach)
NO_PEAK_DB = -99.0  # the true peak reported for digital silence
OUTPUT_RATE = 48000  # `loudnorm` works at 192 kHz: its output is brought back to this
MAX_LRA = 50.0
MEASURE_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "info")
_JSON_BLOCK = re.compile(r"\[Parsed_loudnorm_\d+ @ [^\]]+\]\s*(\{.*?\})", re.S)


def _figure(value: object, floor: float) -> float:
    """One of loudnorm's figures as a float, `floor` for `-inf` (silence) and anything below it."""
    number = float(str(value))
    return floor if not math.isfinite(number) or number < floor else round(number, 2)


def parse_loudnorm(log: str) -> LoudnessMeasure:
    """The input figures of the last `loudnorm` JSON report in an ffmpeg log; ValueError without one."""
    blocks = _JSON_BLOCK.findall(log)
    if not blocks:
        raise ValueError("no loudnorm report in the log")
    report = json.loads(blocks[-1])
    return LoudnessMeasure(
        integrated=_figure(report["input_i"], SILENCE_LUFS),
        true_peak=_figure(report["input_tp"], NO_PEAK_DB),
        lra=_figure(report["input_lra"], 0.0),
        threshold=_figure(report["input_thresh"], SILENCE_LUFS),
    )


def _measure(stream: Any, target: LoudnessPlan | None) -> list[str]:
    arguments: dict[str, object] = {"print_format": "json"}
    if target is not None:
        arguments |= {"I": target.target, "TP": target.true_peak}
    measured = stream.filter("loudnorm", **arguments)
    output = ffmpeg.output(measured, "-", f="null")
    return output.global_args(*MEASURE_ARGS).compile()


def build_source_measure_command(source: Path, index: int, target: LoudnessPlan | None = None) -> list[str]:
    """The first pass: `loudnorm` over audio stream `index` of the source (among its audio streams), into
    nothing; its log (`info` level) ends with the JSON report `parse_loudnorm` reads."""
    stream = ffmpeg.input(file_url(source), **input_options(SOURCE_DEMUXERS))[f"a:{index}"]
    return _measure(stream, target)


def build_output_measure_command(files: Sequence[Path], demuxer: str) -> list[str]:
    """The check after the encode: `loudnorm`'s measure of the first audio stream of an output, read from its
    `files` in order (an MP4; an MPEG-TS rung's segments; an fMP4 track's init and media segments) through
    `demuxer` only."""
    if len(files) == 1:
        url, protocols = file_url(files[0]), "file"
    else:
        url, protocols = concat_url(files), "concat,file"
    stream = ffmpeg.input(url, **input_options((demuxer,), protocols))["a:0"]
    return _measure(stream, None)


Filters = list[tuple[str, dict[str, object]]]


def gain_filters(measured: LoudnessMeasure, target: float, ceiling: float) -> Filters:
    """The filters (name, arguments) that bring a stream `measured` by the first pass to `target` LUFS under
    `ceiling` dBTP: none for silence; one linear `volume` gain when its raised true peak stays under the
    ceiling less CODEC_HEADROOM_DB; else `loudnorm` with the measured values (back to 48 kHz after it)."""
    if measured.integrated <= SILENCE_LUFS:
        return []
    aim = ceiling - CODEC_HEADROOM_DB
    gain = target - measured.integrated
    if measured.true_peak + gain <= aim:
        return [("volume", {"volume": f"{gain:.2f}dB"})]
    loudnorm = {
        "I": target,
        "TP": aim,
        "LRA": min(MAX_LRA, max(11.0, math.ceil(measured.lra + 1))),
        "measured_I": measured.integrated,
        "measured_TP": measured.true_peak,
        "measured_LRA": measured.lra,
        "measured_thresh": measured.threshold,
        "linear": "true",
    }
    return [("loudnorm", loudnorm), ("aresample", {"out_sample_rate": OUTPUT_RATE})]


def normalized(stream: Any, plan: LoudnessPlan | None, index: int) -> Any:
    """Audio `stream` (source audio stream `index`) with the filters that bring it to the plan's target; as
    it is without a plan (or a measure of that stream)."""
    if plan is None or index not in plan.source:
        return stream
    for name, arguments in gain_filters(plan.source[index], plan.target, plan.true_peak):
        stream = stream.filter(name, **arguments)
    return stream
