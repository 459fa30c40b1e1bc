"""How many cores a run may use: thread pools and worker counts follow the machine's idle cores."""

from __future__ import annotations

import os
import time

# cores a batch scheduler gave this job: SLURM (per task, on the node), PBS Pro, Torque
ALLOCATION = ("SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE", "NCPUS", "PBS_NP")


def idle_cores(sample: float = 0.0) -> int:
    """Cores not busy right now (≥ 1): thread pools that spin-wait (torch, OpenBLAS) must not
    take more, or they slow down many-fold next to another busy process.

    By default from the 1-minute load average (free to read). It lags: a study started just
    after a busy minute (``pip install``, a benchmark) saw one idle core of two and ran on one
    for its whole length. ``sample`` seconds of ``/proc/stat`` measure the cores busy now.
    Inside a batch job the cores it was allocated count, whatever the node's load: two 1-core
    jobs starting together on a 2-core node each saw two idle cores and took two threads.
    """
    allocated = next((os.environ[v] for v in ALLOCATION if os.environ.get(v, "").isdigit()), None)
    if allocated is not None:  # a batch job: its cores are reserved, the rest of the node is not ours
        return max(1, min(os.cpu_count() or 1, int(allocated)))
    busy = os.getloadavg()[0]
    if sample > 0:
        measured = _busy_cores(sample)
        busy = busy if measured is None else measured
    return max(1, (os.cpu_count() or 1) - round(busy))


def _busy_cores(seconds: float) -> float | None:
    """Cores busy over the next ``seconds`` (all CPUs' non-idle time / wall), None off Linux."""

    def ticks() -> tuple[float, float]:
        with open("/proc/stat") as stat:
            fields = [float(x) for x in stat.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = ticks()
        time.sleep(seconds)
        total1, idle1 = ticks()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / (total1 - total0))
