"""Pure builders of ffmpeg command lines (through ffmpeg-python); nothing here runs a process.

The encode decodes the source once and `split`s it into every rendition of the job: all HLS variants,
MP4 files and thumbnails come out of one ffmpeg process. Each distinct rendition is encoded once: an MP4 of
the same size and bitrates as an HLS rung is not encoded again but remuxed, copy-only, from that rung's
segments afterwards (`build_mp4_remux_command`). A thumbnail branch keeps the one frame at its timestamp
(`trim`, the filter ffmpeg's own accurate `-ss` seek inserts) and then ends, so it costs one scaled picture,
not a second decode.

An HDR source (PQ or HLG) is tone-mapped to SDR BT.709 once, before the split, for every output but the
HEVC/AV1 rungs that keep its HDR: those get the untouched decode (`pictures`). Each picture size is scaled
once, from the smallest larger size of the command (`media.scaling`, `scaled_pictures`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import ffmpeg

from vodflow.jobs.filters import LoudnessPlan, WatermarkPlan
from vodflow.jobs.plan import CmafOutput, HlsOutput, Mp4Output, OutputPlan, Rendition, ThumbnailOutput
from vodflow.media.color import TONEMAP_FILTERS, MasteringDisplay
from vodflow.media.inputs import concat_url, file_url, input_options
from vodflow.media.loudness import normalized
from vodflow.media.scaling import Size, root_count, scaled_tree, split_ways
from vodflow.media.video_codecs import EncoderPresets, codec_stream_options
from vodflow.media.watermark import Marks, on_images
from vodflow.packaging.cmaf import MANIFEST, audio_only_id, cmaf_dir, dash_muxer_options
from vodflow.packaging.hls import SEGMENT_SECONDS, check_first_segment
from vodflow.packaging.storyboard import SHEET_PATTERN, planned_layout, storyboard_dir, storyboard_filters

KEYFRAME_SECONDS = 2
# Keyframes every 2 s on every rendition, never on scene cuts, so variants switch cleanly.
FORCE_KEY_FRAMES = f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"
HLS_SEGMENT_SECONDS = SEGMENT_SECONDS
GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error")


def hls_dir(workdir: Path, output: HlsOutput) -> Path:
    return workdir / output.file_id


def mp4_path(workdir: Path, output: Mp4Output) -> Path:
    return workdir / f"{output.file_id}.mp4"


def thumbnail_path(workdir: Path, output: ThumbnailOutput) -> Path:
    return workdir / f"{output.file_id}.{output.format}"


def variant_name(rendition: Rendition) -> str:
    return rendition.resolution if rendition.resolution == "4k" else f"{rendition.resolution}p"


AUDIO_ONLY_VARIANT = "audio"


def rung_name(rendition: Rendition) -> str:
    """A rung's name in a ladder: its variant name (`240p`), with the codec when it is not H.264
    (`240p-hevc`: a CMAF ladder may hold the same size in several codecs)."""
    name = variant_name(rendition)
    return name if rendition.codec == "h264" else f"{name}-{rendition.codec}"


def hls_variants(output: HlsOutput) -> list[str]:
    """The variant folders of an HLS ladder: one per rung, then the audio-only variant's if it has one."""
    names = [variant_name(r) for r in output.renditions]
    return names + [AUDIO_ONLY_VARIANT] if output.audio_only_kbps else names


def rung_folder(plan: OutputPlan, rendition: Rendition, workdir: Path) -> Path | None:
    """The folder of the first HLS rung encoded as `rendition` (its segments and playlist), if any."""
    for out in plan.hls:
        if rendition in out.renditions:
            return hls_dir(workdir, out) / variant_name(rendition)
    return None


def remuxed_mp4s(plan: OutputPlan) -> list[Mp4Output]:
    """The MP4s that share an HLS rung's encode (same size and bitrates): remuxed from its segments."""
    rungs = {r for out in plan.hls for r in out.renditions}
    return [out for out in plan.mp4 if out.rendition in rungs]


def shared_dir(workdir: Path) -> Path:
    """Where the encode keeps what the MP4s remuxed from a rung need until they are made."""
    return workdir / "shared"


def shared_audio_path(workdir: Path, kbps: int) -> Path:
    """The audio track the encode writes for MP4s remuxed from a rung (AAC in MP4 keeps its priming, which
    the rung's MPEG-TS segments do not carry)."""
    return shared_dir(workdir) / f"audio-{kbps}k.m4a"


def build_mp4_remux_command(
    segments: Sequence[Path], dest: Path, *, audio: Path | None = None, audio_start: float = 0.0
) -> list[str]:
    """A copy-only ffmpeg command: the video of an HLS rung's MPEG-TS segments and the `audio` track (starting
    at `audio_start` s) joined into a faststart MP4, as the chunked encode's stitch joins its pieces."""
    streams = [ffmpeg.input(concat_url(segments), **input_options(("mpegts",), "concat,file")).video]
    if audio is not None:
        track = ffmpeg.input(file_url(audio), itsoffset=f"{audio_start:.6f}", **input_options(("mov",)))
        streams.append(track.audio)
    output = ffmpeg.output(*streams, str(dest), c="copy", movflags="+faststart")
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


def x264_options(x264_preset: str) -> dict[str, object]:
    """libx264's options of every H.264 rendition (the encode's, the chunks', the per-title probes')."""
    return {
        "vcodec": "libx264",
        "preset": x264_preset,
        "pix_fmt": "yuv420p",
        "profile:v": "high",
        "force_key_frames": FORCE_KEY_FRAMES,
        "sc_threshold": 0,
    }


def hls_muxer_options(
    folder: Path, playlist_type: str = "vod", first_segment_seconds: int = 0
) -> dict[str, object]:
    """ffmpeg's `hls` muxer options of every ladder: 6 s segments under `folder/<variant>/`, VOD playlists
    (written once, at the end) or EVENT ones (rewritten after each segment, for publishing while encoding).

    With `first_segment_seconds` (the keyframe interval; ValueError for another length but 0) the muxer
    cuts a part at each keyframe instead (`part_%05d.ts`), which vodflow joins into the rung's segments:
    short ones for the first 6 s, then 6 s ones (`media.segments`)."""
    check_first_segment(first_segment_seconds)
    pattern = "part_%05d.ts" if first_segment_seconds else "seg_%05d.ts"
    return {
        "f": "hls",
        "hls_time": first_segment_seconds or HLS_SEGMENT_SECONDS,
        "hls_playlist_type": playlist_type,
        "hls_flags": "independent_segments",
        "hls_segment_filename": str(folder / "%v" / pattern),
    }


def hls_stream_map(output: HlsOutput, *, has_audio: bool) -> str:
    """The hls muxer's `var_stream_map` of a ladder: each rung's video (with its audio) named by its variant,
    then, with audio, the audio-only variant's track (listed last)."""
    variants = [
        f"v:{j},a:{j},name:{variant_name(r)}" if has_audio else f"v:{j},name:{variant_name(r)}"
        for j, r in enumerate(output.renditions)
    ]
    if has_audio and output.audio_only_kbps:
        variants.append(f"a:{len(output.renditions)},name:{AUDIO_ONLY_VARIANT}")
    return " ".join(variants)


def rate_options(rendition: Rendition, index: int | None = None, with_audio: bool = True) -> dict[str, str]:
    """A rendition's rate control (average bitrate, maxrate 1.07x, a 2x buffer) and audio bitrate, for output
    stream `index` (every stream when None)."""
    v = "v" if index is None else f"v:{index}"
    a = "a" if index is None else f"a:{index}"
    options = {
        f"b:{v}": f"{rendition.video_kbps}k",
        f"maxrate:{v}": f"{int(rendition.video_kbps * 1.07)}k",
        f"bufsize:{v}": f"{rendition.video_kbps * 2}k",
    }
    if with_audio:
        options[f"b:{a}"] = f"{rendition.audio_kbps}k"
    return options


def build_encode_command(
    source: Path,
    plan: OutputPlan,
    workdir: Path,
    *,
    has_audio: bool,
    x264_preset: str = "veryfast",
    live: bool = False,
    x265_preset: str = "faster",
    svtav1_preset: int = 10,
    frame_rate: float = 0.0,
    mastering: MasteringDisplay | None = None,
    first_segment_seconds: int = 0,
) -> list[str]:
    """One ffmpeg command that writes every HLS ladder, MP4 and thumbnail of `plan` under `workdir`; the MP4s
    of `remuxed_mp4s(plan)` excepted (their rung's encode serves them). The MPEG-TS ladders come in parts
    to join with `first_segment_seconds` (`hls_muxer_options`).

    `live` writes the ladders' playlists as EVENT playlists after every segment, so they can be published
    while the encode runs; the segments and master playlists are the same bytes either way. HEVC and AV1
    rungs use `x265_preset` and `svtav1_preset`, a GOP of 2 s at the source's `frame_rate`, and the source's
    `mastering` metadata when they keep its HDR10.
    """
    remuxed = remuxed_mp4s(plan)
    encoded_mp4s = [out for out in plan.mp4 if out not in remuxed]
    renditions = [r for out in plan.hls for r in out.renditions] + [out.rendition for out in encoded_mp4s]
    shared_kbps = sorted({out.rendition.audio_kbps for out in remuxed}) if has_audio else []
    audio_only = [out for out in plan.hls if out.audio_only_kbps] if has_audio else []
    by_time = by_timestamp(plan.thumbnails)
    src = ffmpeg.input(file_url(source), **input_options())
    boards = 1 if plan.storyboard is not None else 0
    keeps = [False] * len(renditions)
    keeps += [r.dynamic_range != "sdr" for out in plan.cmaf for r in out.renditions]
    sizes: list[Size | None] = [(r.width, r.height) for r in renditions]
    sizes += [(r.width, r.height) for out in plan.cmaf for r in out.renditions]
    frames = len(by_time) + boards  # thumbnails and tiles pick their frames before they scale
    video = scaled_pictures(src.video, sizes + [None] * frames, keeps + [False] * frames, plan.dynamic_range)
    audio_branches = len(renditions) + len(shared_kbps) + len(audio_only)
    audio = None
    if has_audio:
        audio = normalized(src.audio, plan.loudness, 0).filter_multi_output("asplit", audio_branches)
    marks = Marks(plan.watermark, len(keeps))  # every video rendition, CMAF rungs included
    image_marks = Marks(on_images(plan.watermark), len(plan.thumbnails) + boards)

    def branch(i: int, rendition: Rendition) -> list[object]:
        scaled = marks.over(video[i].filter("setsar", 1), rendition.width, rendition.height)
        return [scaled, audio[i]] if audio is not None else [scaled]

    outputs = []
    i = 0
    for out in plan.hls:
        streams: list[object] = []
        options: dict[str, object] = {}
        for j, rendition in enumerate(out.renditions):
            streams += branch(i, rendition)
            options.update(rate_options(rendition, j, has_audio))
            i += 1
        if out in audio_only and audio is not None:  # after the rungs: an audio-only variant lists last
            j = len(out.renditions)
            streams.append(audio[len(renditions) + len(shared_kbps) + audio_only.index(out)])
            options[f"b:a:{j}"] = f"{out.audio_only_kbps}k"
        folder = hls_dir(workdir, out)
        outputs.append(
            ffmpeg.output(
                *streams,
                str(folder / "%v" / "index.m3u8"),
                **hls_muxer_options(folder, "event" if live else "vod", first_segment_seconds),
                master_pl_name="index.m3u8",
                var_stream_map=hls_stream_map(out, has_audio=has_audio),
                **x264_options(x264_preset),
                **({"acodec": "aac", "ac": 2} if has_audio else {}),
                **options,
            )
        )
    for out in encoded_mp4s:
        outputs.append(
            ffmpeg.output(
                *branch(i, out.rendition),
                str(mp4_path(workdir, out)),
                movflags="+faststart",
                **x264_options(x264_preset),
                **({"acodec": "aac", "ac": 2} if has_audio else {}),
                **rate_options(out.rendition, with_audio=has_audio),
            )
        )
        i += 1
    for out in plan.cmaf:
        # No `setsar 1` here: the dash muxer wants one aspect ratio per AdaptationSet, and a rung rounded to
        # even sizes (426x240 of 16:9) keeps the source's exact one only through the sample aspect ratio.
        scaled = [marks.over(video[i + j], r.width, r.height) for j, r in enumerate(out.renditions)]
        codecs = _CodecOptions(
            EncoderPresets(x264_preset, x265_preset, svtav1_preset),
            max(1, round(KEYFRAME_SECONDS * (frame_rate or 25))),
            mastering,
        )
        outputs.append(_cmaf_output(src, scaled, out, workdir, codecs, plan.loudness))
        i += len(out.renditions)
    for k, kbps in enumerate(shared_kbps):
        track = audio[len(renditions) + k]
        outputs.append(
            ffmpeg.output(
                track, str(shared_audio_path(workdir, kbps)), acodec="aac", ac=2, movie_timescale=90000,
                **{"b:a": f"{kbps}k"},
            )
        )  # fmt: skip
    for j, (seconds, group) in enumerate(by_time):
        frame = video[i + j].filter("trim", start=seconds).filter("setpts", "PTS-STARTPTS")
        outputs += _image_outputs(frame.filter("trim", end_frame=1), group, workdir, image_marks)
    if plan.storyboard is not None:
        outputs.append(_storyboard_output(video[i + len(by_time)], plan, workdir, image_marks))
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS).overwrite_output().compile()


def tone_mapped(video: object) -> object:
    """`video` (an ffmpeg-python stream of an HDR source) tone-mapped to SDR BT.709 by `TONEMAP_FILTERS`; the
    encoder takes its BT.709 tags from the frames, so an H.264 output needs no colour options."""
    for name, arguments in TONEMAP_FILTERS:
        video = video.filter(name, **arguments)  # type: ignore[attr-defined]
    return video


def pictures(video: object, keeps: list[bool], source_range: str) -> list[object]:
    """One branch of the decoded `video` per consumer, in order: tone-mapped to SDR BT.709 when the source
    is HDR, unless `keeps` says the consumer keeps the source's HDR. An SDR source is split as it is."""
    if source_range == "sdr":
        return split_ways(video, len(keeps))
    hdr, sdr = keeps.count(True), keeps.count(False)
    if hdr and sdr:
        top = video.filter_multi_output("split", 2)  # type: ignore[attr-defined]
        tonemapped, kept = top[0], top[1]
    else:
        tonemapped = kept = video
    branches: dict[bool, list[object]] = {True: [], False: []}
    if sdr:
        branches[False] = split_ways(tone_mapped(tonemapped), sdr)
    if hdr:
        branches[True] = split_ways(kept, hdr)
    return [branches[keep].pop(0) for keep in keeps]


def scaled_pictures(
    video: object, sizes: Sequence[Size | None], keeps: Sequence[bool], source_range: str
) -> list[object]:
    """One stream per consumer, in order: the decoded `video` scaled to `sizes[i]` (`media.scaling`: each
    size once, from the smallest larger one of the same dynamic range), or as it is where `sizes[i]` is None;
    tone-mapped or kept HDR by `keeps[i]` as `pictures` does."""
    wants = list(zip(sizes, keeps, strict=True))
    trees = {keep: [s for s, k in wants if k == keep and s is not None] for keep in (False, True)}
    roots = [keep for keep, tree in trees.items() for _ in range(root_count(tree))]
    branches = iter(pictures(video, roots + [k for s, k in wants if s is None], source_range))
    scaled = {}
    for keep, tree in trees.items():  # the branches in `roots`' order, then the unscaled ones
        scaled[keep] = iter(scaled_tree([next(branches) for _ in range(roots.count(keep))], tree))
    return [next(branches) if s is None else next(scaled[k]) for s, k in wants]


@dataclass(frozen=True)
class _CodecOptions:
    presets: EncoderPresets
    gop_frames: int
    mastering: MasteringDisplay | None


def _cmaf_output(
    src: object,
    scaled: list[object],
    out: CmafOutput,
    workdir: Path,
    codecs: _CodecOptions,
    loudness: LoudnessPlan | None = None,
) -> object:
    """The `dash` output of one CMAF ladder: the scaled rungs without sound, then each audio track of the
    source encoded once (it serves every rung), then the audio-only variant from the default track; none of
    the source's metadata, only the tracks' checked languages (`metadata:s:a`). An H.264-only ladder has the
    encoder options of every other output; one with HEVC or AV1 rungs names them per stream
    (`media.video_codecs`). With `loudness`, each track is normalized (split for the audio-only variant)."""
    default = next((k for k, track in enumerate(out.audio) if track.default), 0)
    twice = audio_only_id(out) is not None and loudness is not None  # a filtered stream is split to reuse
    audio = []
    for k, track in enumerate(out.audio):
        stream = normalized(src[f"a:{track.index}"], loudness, track.index)  # type: ignore[index]
        if twice and k == default:
            stream = stream.filter_multi_output("asplit", 2)
            audio.append(stream[0])
            spare = stream[1]
        else:
            audio.append(stream)
    options: dict[str, object] = {}
    if all(r.codec == "h264" for r in out.renditions):
        video_options = x264_options(codecs.presets.x264)
    else:
        video_options = {"force_key_frames": FORCE_KEY_FRAMES, "sc_threshold": 0}
        for j, rendition in enumerate(out.renditions):
            video_options |= codec_stream_options(
                rendition, j, codecs.presets, gop_frames=codecs.gop_frames, mastering=codecs.mastering
            )
    for j, rendition in enumerate(out.renditions):
        options.update(rate_options(rendition, j, with_audio=False))
    languages = [track.language for track in out.audio]
    bitrates = [out.audio_kbps] * len(out.audio)
    if audio_only_id(out) is not None:
        audio.append(spare if twice else audio[default])
        languages.append(languages[default])
        bitrates.append(out.audio_only_kbps or out.audio_kbps)
    for k, (language, kbps) in enumerate(zip(languages, bitrates, strict=True)):
        options[f"b:a:{k}"] = f"{kbps}k"
        options[f"metadata:s:a:{k}"] = f"language={language}"
    return ffmpeg.output(
        *scaled,
        *audio,
        str(cmaf_dir(workdir, out) / MANIFEST),
        map_metadata=-1,  # the dash muxer writes metadata into the MPD as it is: only vodflow's goes in
        **dash_muxer_options(out, KEYFRAME_SECONDS),
        **video_options,
        **({"acodec": "aac", "ac": 2} if audio else {}),
        **options,
    )


def _storyboard_output(video: object, plan: OutputPlan, workdir: Path, marks: Marks) -> object:
    """The storyboard's sheets (JPEG, numbered from 0) from one branch of the decode; at most the layout's
    number of sheets (the `fps` filter may round one frame more out of the source's end)."""
    assert plan.storyboard is not None
    layout = planned_layout(plan.storyboard)
    for name, arguments in storyboard_filters(layout):
        if name == "tile":  # each frame gets the watermark before the frames are tiled
            video = marks.over(video, layout.width, layout.height)
        video = video.filter(name, **arguments)  # type: ignore[attr-defined]
    folder = storyboard_dir(workdir, plan.storyboard)
    options = {**_image_options("jpg"), "start_number": 0, "frames:v": layout.sheets}
    return ffmpeg.output(video, str(folder / SHEET_PATTERN), **options)


def _image_options(fmt: str) -> dict[str, object]:
    if fmt == "webp":
        return {"vcodec": "libwebp", "quality": 80}
    return {"vcodec": "mjpeg", "pix_fmt": "yuvj420p", "q:v": 3}


def by_timestamp(outputs: Iterable[ThumbnailOutput]) -> list[tuple[float, list[ThumbnailOutput]]]:
    """Thumbnails grouped by the timestamp they are taken at, earliest first."""
    ordered = sorted(outputs, key=lambda out: out.seconds)
    return [(seconds, list(group)) for seconds, group in groupby(ordered, key=lambda out: out.seconds)]


def _image_outputs(
    frame: object, outputs: list[ThumbnailOutput], workdir: Path, marks: Marks | None = None
) -> list[object]:
    """One image output per thumbnail of one frame: scaled, optionally blurred, with the watermark of
    `marks` (one branch each), jpg or webp."""
    frames = frame.filter_multi_output("split", len(outputs)) if len(outputs) > 1 else [frame]
    images = []
    for i, out in enumerate(outputs):
        picture = frames[i].filter("scale", out.width, out.height).filter("setsar", 1)
        if out.filter == "blur":
            picture = picture.filter("gblur", sigma=max(4, min(out.width, out.height) // 24))
        if marks is not None:
            picture = marks.over(picture, out.width, out.height)
        images.append(
            ffmpeg.output(picture, str(thumbnail_path(workdir, out)), frames=1, **_image_options(out.format))
        )
    return images


def build_thumbnail_command(
    source: Path,
    outputs: list[ThumbnailOutput],
    workdir: Path,
    dynamic_range: str = "sdr",
    watermark: WatermarkPlan | None = None,
) -> list[str]:
    """One ffmpeg command that writes every image taken at one timestamp (fast and accurate input seek),
    tone-mapped to SDR when the source's `dynamic_range` is HDR.

    Used for thumbnails the encode did not make (a chunked encode, a frame the encode could not take). A
    `watermark` goes over every image.
    """
    groups = by_timestamp(outputs)
    if len(groups) != 1:
        raise ValueError("a thumbnail command covers exactly one timestamp")
    seconds, group = groups[0]
    frame = ffmpeg.input(file_url(source), ss=f"{seconds:.3f}", **input_options()).video
    if dynamic_range != "sdr":
        frame = tone_mapped(frame)
    images = _image_outputs(frame, group, workdir, Marks(watermark, len(group)))
    return ffmpeg.merge_outputs(*images).global_args(*GLOBAL_ARGS).overwrite_output().compile()
