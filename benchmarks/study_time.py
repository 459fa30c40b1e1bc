"""Wall time, peak memory, per-stage time and force calls of `ncmflow study` on this machine.

Each run starts from an empty store in a fresh folder and runs the CLI as a user does. Stage
times come from the store afterwards: the local runner runs one job at a time, so a job took
the time between its ``completed_at`` and the previous job's (the first job's includes start-up).
Targets (issue 12): --quick ≤ 3 min, full ≤ 15 min on 2 idle cores, peak ≤ 2 GB.

    python benchmarks/study_time.py [--full] [--models bulk,bare,cpan] [--ml-models chgnet] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

TARGETS = {"quick": 180.0, "full": 900.0}


def stage_table(store_dir: Path) -> list[tuple[str, int, float, int]]:
    """(model + stage, jobs, seconds, force calls or optimizer steps) from the store."""
    from ncmflow.workflows.store import get_store

    store = get_store(store_dir)
    docs = list(store.query({}, properties=["completed_at", "metadata", "output.force_calls",
                                            "output.output.n_steps"], sort={"completed_at": 1}))
    rows: dict[str, list] = defaultdict(lambda: [0, 0.0, 0])
    previous = None
    for doc in docs:
        done = datetime.fromisoformat(doc["completed_at"])
        meta = doc.get("metadata") or {}
        stage = str(meta.get("stage", "?")).split()[0]
        key = f"{meta.get('model') or '':5} {stage:11} {meta.get('potential') or ''}"
        out = doc.get("output") if isinstance(doc.get("output"), dict) else {}
        calls = out.get("force_calls") or (out.get("output") or {}).get("n_steps") or 0
        row = rows[key]
        row[0] += 1
        row[1] += (done - previous).total_seconds() if previous else 0.0
        row[2] += calls
        previous = done
    return [(k, *v) for k, v in sorted(rows.items())]


def run(quick: bool, models: str, ml_models: str, keep: Path | None) -> tuple[float, float, list]:
    """(seconds, peak resident MB, stage table) of one study in a fresh folder."""
    args = [sys.executable, "-m", "ncmflow", "study", "--models", models, "--ml-models", ml_models]
    args += ["--quick"] if quick else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    folder = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        subprocess.run(args, cwd=folder, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        stages = stage_table(folder / "ncmflow_data")
        if keep:
            shutil.copytree(folder, keep / ("quick" if quick else "full"), dirs_exist_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return wall, peak, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time the full study")
    parser.add_argument("--models", default="bulk,bare,cpan")
    parser.add_argument("--ml-models", default="chgnet")
    parser.add_argument("--keep", type=Path, help="copy each run's folder (store, report) here")
    args = parser.parse_args()
    modes = ["quick", "full"] if args.full else ["quick"]
    results = {m: run(m == "quick", args.models, args.ml_models, args.keep) for m in modes}
    print(f"ncmflow study ({args.models}; {args.ml_models}), engine mlip, fresh store")
    for mode, (wall, peak, stages) in results.items():
        verdict = "met" if wall <= TARGETS[mode] else "NOT met"
        print(f"{mode:6} {wall:8.1f} s  peak {peak:7.0f} MB  target {TARGETS[mode]:.0f} s: {verdict} "
              f"(ratio {wall / TARGETS[mode]:.2f})")
        print(f"  {'model stage potential':32}{'jobs':>5}{'seconds':>10}{'force calls / relax steps':>28}")
        for key, jobs, seconds, calls in stages:
            print(f"  {key:32}{jobs:>5}{seconds:>10.1f}{calls:>28}")
    if "full" in results:
        print(f"full / quick wall-time ratio {results['full'][0] / results['quick'][0]:.2f}")


if __name__ == "__main__":
    main()
