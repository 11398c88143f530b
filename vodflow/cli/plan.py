"""`vodflow plan SPEC`: the exact ffmpeg commands a local encode of the job would run, as a shell script,
without Prefect and without running them (probes the source, which must be a local file)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from vodflow.cli.encode import X264_PRESETS, prepare_spec, read_spec_file
from vodflow.cli.output import EXIT_CODES, EXIT_OK, EXIT_USER_ERROR, UserError
from vodflow.errors import StepError


def add_parser(subparsers: Any) -> None:
    """Register `plan SPEC [--workdir DIR] [--chunk-seconds S] [--x264-preset P]`."""
    plan = subparsers.add_parser(
        "plan",
        help="print the ffmpeg commands a local encode of a job spec would run (a shell script)",
        description="Probe the spec's local source and print, as a POSIX shell script, the exact ffmpeg "
        "commands vodflow's local encoder would run for it: one process (default) or chunks side by side "
        "(--chunk-seconds). Nothing is run but a `ladder: auto` preset's analysis (its probe encodes choose "
        "the bitrates the script shows); no Prefect. Time it anywhere: `vodflow plan job.json > job.sh; "
        "time sh job.sh`.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("spec", help="path to the job spec JSON; its videoUrl must be a local file")
    plan.add_argument(
        "--workdir", type=Path, default=Path("vodflow-plan"), help="where outputs go (./vodflow-plan)"
    )
    plan.add_argument(
        "--chunk-seconds", type=float, help="encode in chunks of about this many seconds (a multiple of 6)"
    )
    plan.add_argument(
        "--x264-preset", choices=X264_PRESETS, help="x264 preset (default: VODFLOW_X264_PRESET)"
    )
    plan.set_defaults(func=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from vodflow.encoders import EncodeOptions
    from vodflow.encoders.chunked import piece_spec
    from vodflow.jobs.cost import check_plan_size
    from vodflow.jobs.document import JobDocument
    from vodflow.jobs.plan import plan_outputs
    from vodflow.jobs.sources import Source, parse_video_url
    from vodflow.media.commands import rung_name
    from vodflow.media.probe import probe_source
    from vodflow.media.script import chunked_commands, one_process_commands, shell_script
    from vodflow.settings import load_settings
    from vodflow.steps.pertitle import probe_rungs

    try:
        spec = prepare_spec(read_spec_file(args.spec))
        ref = parse_video_url(spec.video_url or "")
        if ref.kind != "local":
            raise UserError("videoUrl: plan needs a local file (download the source first)")
        settings = load_settings()
        path = Path(ref.path or "").resolve()
        source = Source(path, probe_source(path, settings.limits()))
        doc = JobDocument.from_spec(spec, "plan")
        plan = plan_outputs(doc, source.info)
        check_plan_size(plan, source.info, settings.limits())
        workdir = args.workdir.resolve()
        preset = args.x264_preset or settings.x264_preset
        if plan.auto_rungs:
            with tempfile.TemporaryDirectory(prefix="vodflow-plan-") as scratch:
                probes = probe_rungs(source, plan.auto_rungs, Path(scratch), x264_preset=preset)
            plan = plan_outputs(doc, source.info, probes=probes)
        if args.chunk_seconds:
            options = EncodeOptions(preset, settings.x265_preset, settings.svtav1_preset)
            groups = chunked_commands(
                source, plan, workdir, piece_spec(source, plan, options), args.chunk_seconds
            )
        else:
            groups = one_process_commands(source, plan, workdir, preset)
    except (UserError, StepError, ValueError) as exc:
        print(f"vodflow plan: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    title = (
        f"vodflow plan: {path.name}, {source.info.duration:.1f} s {source.info.width}x{source.info.height}"
    )
    if auto := [r for out in (*plan.hls, *plan.cmaf) if out.auto_ladder for r in out.renditions]:
        dropped = [s.resolution for s in plan.skipped if s.reason.startswith("ladder auto")]
        title += "; ladder auto: " + ", ".join(f"{rung_name(r)} {r.video_kbps} kbit/s" for r in auto)
        title += f" (dropped: {', '.join(dropped)})" if dropped else ""
    sys.stdout.write(shell_script(groups, workdir, title, plan))
    return EXIT_OK
