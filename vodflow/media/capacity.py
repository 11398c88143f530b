"""How much ffmpeg a host runs at once, from its cores: the defaults of `VODFLOW_FFMPEG_SLOTS` and
`VODFLOW_CHUNK_THRESHOLD_SECONDS`.

The scaling model, measured (bench/results.md, "Scaling"): one encode of a 1080p ladder keeps about four cores
of a many-core host busy and no more (x264's threads wait on each other and on the one decode). On a 16-core
host (ffmpeg 7.0.2, 60 s 1080p, the demo ladder) one job alone took 23.7 s; 4 jobs at once 16.5 s a job
(1.44x the throughput), 8 at once 15.1 s a job (1.56x). Those fit `throughput(k) = k / (1 + (k - 1) * a)` with
a = 0.59, so the fourth slot still adds 5% and later ones little more: a host gets one ffmpeg slot per four
cores (`cores // 4`, at least 1: 1 on a 2- or 4-core host, where one ffmpeg fills every core). With two slots
or more, one long job can use them too: sources longer than 120 s are cut into chunks that take the slots side
by side (on 16 cores, 4 chunks: 1.27x faster than one process; 8: 1.35x).
"""

from __future__ import annotations

import os
from pathlib import Path

CORES_PER_SLOT = 4
CHUNK_THRESHOLD_SECONDS = 120.0
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def host_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_ffmpeg_slots(cores: int) -> int:
    """ffmpeg processes a host of `cores` cores runs at once: one per four cores, at least one."""
    return max(1, cores // CORES_PER_SLOT)


def default_chunk_threshold(cores: int, cluster: bool) -> float:
    """Source length past which a job is encoded in chunks (0: never): 120 s with a Dask cluster or a host
    that runs two ffmpeg processes or more at once; never on a smaller host alone (one ffmpeg fills it)."""
    return CHUNK_THRESHOLD_SECONDS if cluster or default_ffmpeg_slots(cores) >= 2 else 0.0
