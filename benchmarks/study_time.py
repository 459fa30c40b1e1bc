"""Wall time and peak memory of `ncmflow study` on this machine (targets: --quick ≤ 2 min,
full ≤ 10 min on 2 cores). Each run starts from an empty store in a fresh folder.

    python benchmarks/study_time.py [--full] [--models bulk,bare,cpan]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

TARGETS = {"quick": 120.0, "full": 600.0}


def run(quick: bool, models: str) -> tuple[float, float]:
    """(seconds, peak resident MB) of one study in a fresh folder."""
    args = [sys.executable, "-m", "ncmflow", "study", "--models", models] + (["--quick"] if quick else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        subprocess.run(args, cwd=folder, check=True, capture_output=True)
        wall = time.perf_counter() - t0
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time the full study")
    parser.add_argument("--models", default="bulk,bare,cpan")
    args = parser.parse_args()
    results = {"quick": run(True, args.models)}
    if args.full:
        results["full"] = run(False, args.models)
    print(f"ncmflow study ({args.models}), engine mlip, fresh store")
    for mode, (wall, peak) in results.items():
        verdict = "met" if wall <= TARGETS[mode] else "NOT met"
        print(
            f"{mode:6} {wall:8.1f} s  peak {peak:7.0f} MB  target {TARGETS[mode]:.0f} s: {verdict} "
            f"(ratio {wall / TARGETS[mode]:.2f})"
        )
    if "full" in results:
        print(f"full / quick wall-time ratio {results['full'][0] / results['quick'][0]:.2f}")


if __name__ == "__main__":
    main()
