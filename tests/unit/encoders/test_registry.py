"""The encoder registry (`vodflow.encoders.get_encoder`): every name gives its encoder, `local` becomes
`chunked` only for a long source whose plan a chunked encode can make, an unknown name is refused naming the
known ones, and a local job never imports the remote services' clients."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vodflow.encoders import get_encoder
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import parse_spec


def info(duration: float) -> SourceInfo:
    return SourceInfo(duration, 640, 360, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0)


def plan(duration: float, presets: list[dict]):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/x.mp4", "presets": presets}))
    return plan_outputs(doc, info(duration))


HLS = [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["240"]}]
CMAF = [{"format": "cmaf", "resolutions": ["240"]}]


@pytest.mark.parametrize(
    ("name", "local"), [("local", True), ("chunked", True), ("videosdk", False), ("mpc", False)]
)
def test_every_registered_name_gives_its_encoder(name, local):
    encoder = get_encoder(name)
    assert (encoder.name, encoder.local) == (name, local)
    assert callable(encoder.encode)


@pytest.mark.parametrize(
    ("duration", "threshold", "expected"),
    [
        (60.0, 0.0, "local"),  # 0: chunking off, whatever the length
        (60.0, -5.0, "local"),
        (60.0, 60.0, "local"),  # only longer than the threshold
        (60.5, 60.0, "chunked"),
        (3600.0, 120.0, "chunked"),
        (10.0, 120.0, "local"),
    ],
)
def test_local_becomes_chunked_only_past_the_threshold(duration, threshold, expected):
    assert get_encoder("local", info(duration), threshold, plan(duration, HLS)).name == expected
    assert get_encoder("local", info(duration), threshold).name == expected  # no plan yet: the length only


@pytest.mark.parametrize(
    "presets",
    [
        CMAF,
        [{"format": "hls", "resolutions": ["240"], "audioOnly": True}],
        [*HLS, *CMAF],
    ],
)
def test_a_long_job_is_chunked_whatever_it_makes(presets):
    long = plan(3600.0, presets)
    assert get_encoder("local", info(3600.0), 120.0, long).name == "chunked"
    assert get_encoder("local", info(60.0), 120.0, plan(60.0, presets)).name == "local"


@pytest.mark.parametrize("name", ["videosdk", "mpc"])
def test_remote_encoders_are_never_chunked(name):
    assert get_encoder(name, info(3600.0), 120.0, plan(3600.0, HLS)).name == name


@pytest.mark.parametrize("name", ["", "LOCAL", "ffmpeg", "vodflow.encoders.local:OneProcessEncoder"])
def test_an_unknown_name_is_refused_naming_the_known_ones(name):
    with pytest.raises(ValueError) as caught:
        get_encoder(name)
    assert str(caught.value) == f"encoder: unknown {name!r}; known: local, chunked, videosdk, mpc"


def test_a_local_job_never_imports_the_remote_services_clients():
    """A fresh interpreter: choosing and building the local encoders loads neither remote module."""
    script = (
        "import json, sys\n"
        "from vodflow.encoders import get_encoder\n"
        "get_encoder('local'); get_encoder('chunked')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('vodflow.encoders.'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    modules = json.loads(loaded.stdout)
    assert "vodflow.encoders.local" in modules and "vodflow.encoders.chunked" in modules
    assert not [m for m in modules if m.endswith((".videosdk", ".mpc", ".remote"))], modules
