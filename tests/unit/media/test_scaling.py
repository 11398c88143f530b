"""The scaling tree: each size scaled once, from the smallest larger size of the same command."""

from __future__ import annotations

import re

import ffmpeg

from vodflow.media.scaling import root_count, scaled_tree, scaling_parents

LADDER = [(426, 240), (640, 360), (854, 480), (1280, 720), (1920, 1080)]


def test_each_rung_is_scaled_from_the_next_larger_one():
    parents = scaling_parents(LADDER)
    assert parents == {
        (426, 240): (640, 360),
        (640, 360): (854, 480),
        (854, 480): (1280, 720),
        (1280, 720): (1920, 1080),
        (1920, 1080): None,
    }
    assert root_count(LADDER) == 1


def test_a_size_larger_in_one_dimension_only_is_never_a_parent():
    portrait, landscape = (360, 640), (640, 360)
    parents = scaling_parents([portrait, landscape, (240, 426), (426, 240)])
    assert parents == {(240, 426): portrait, (426, 240): landscape, portrait: None, landscape: None}
    assert root_count([portrait, landscape, (240, 426)]) == 2


def test_repeated_sizes_share_one_scale_and_every_consumer_gets_its_own_branch():
    sizes = [(640, 360), (426, 240), (640, 360), (1280, 720)]
    streams = scaled_tree([ffmpeg.input("in.mkv").video], sizes)
    outputs = [ffmpeg.output(stream, f"out{k}.mkv") for k, stream in enumerate(streams)]
    command = ffmpeg.merge_outputs(*outputs).compile()
    graph = command[command.index("-filter_complex") + 1]
    assert re.findall(r"scale=(\d+:\d+)", graph) == ["1280:720", "640:360", "426:240"]
    maps = [command[i + 1] for i, arg in enumerate(command) if arg == "-map"]
    assert len(set(maps)) == len(sizes), "a graph may not use one branch twice"
    assert f"scale=426:240{maps[1]}" in graph


def test_one_consumer_of_one_size_gets_the_scale_itself():
    stream = scaled_tree([ffmpeg.input("in.mkv").video], [(640, 360)])[0]
    command = ffmpeg.output(stream, "out.mkv").compile()
    assert command[command.index("-filter_complex") + 1] == "[0:v]scale=640:360[s0]"
