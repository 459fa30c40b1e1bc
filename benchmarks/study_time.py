"""Wall time, peak memory, per-stage time and force calls of `ncmflow study` on this machine.

Each run starts from an empty store in a fresh folder and runs the CLI as a user does, its
output redirected: job times come from the plain progress lines ("[ 35 s] cpan site 0 chgnet:
relax start done"), which hold when jobs run side by side in worker processes too; force calls
(NEB) and optimizer steps (relaxations) come from the store. Peak memory is the largest sum of
resident memory over the CLI and all its worker processes (sampled every 0.5 s).
Targets (issue 12): --quick ≤ 3 min, full ≤ 15 min on 2 idle cores, peak ≤ 2 GB.
``--baseline`` runs the same study again with ``--workers 1`` (one job at a time) for a ratio.

    python benchmarks/study_time.py [--full] [--baseline] [--models bulk,bare,cpan]
                                    [--ml-models chgnet] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

TARGETS = {"quick": 180.0, "full": 900.0}
PEAK_TARGET_MB = 2048
EVENT = re.compile(r"^\[\s*(\d+) s\] (.+?): (.+) (start|done)$")
PREVIOUS = {"quick": 1875.0}  # s: README, 2026-12-02, before issue 12 (31 min 15 s, 2 idle cores)


def _key(row: str, stage: str) -> str:
    words = row.split()
    model = words[0]
    potential = words[3] if len(words) > 3 and words[1] == "site" else ""
    return f"{model:7} {stage.split()[0]:11} {potential}"


def job_times(log: str) -> dict[str, list[float]]:
    """{model + stage + potential: [seconds of each job]} from the plain progress lines."""
    started: dict[tuple[str, str], int] = {}
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.splitlines():
        found = EVENT.match(line.strip())
        if not found:
            continue
        t, row, stage, event = int(found[1]), found[2], found[3], found[4]
        if event == "start":
            started[(row, stage)] = t
        elif (row, stage) in started:
            times[_key(row, stage)].append(t - started.pop((row, stage)))
    return times


def work(store_dir: Path) -> dict[str, int]:
    """{model + stage + potential: NEB force calls or relaxation steps} from the store."""
    from ncmflow.workflows.store import get_store

    store = get_store(store_dir)
    calls: dict[str, int] = defaultdict(int)
    for doc in store.query({}, properties=["metadata", "output.force_calls", "output.output.n_steps"]):
        meta = doc.get("metadata") or {}
        out = doc.get("output") if isinstance(doc.get("output"), dict) else {}
        row = " ".join(filter(None, (str(meta.get("model")), f"site {meta.get('site')}"
                                     if meta.get("site") is not None else "", meta.get("potential") or "")))
        calls[_key(row, str(meta.get("stage", "?")))] += (
            out.get("force_calls") or (out.get("output") or {}).get("n_steps") or 0)
    return calls


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def run(quick: bool, args: argparse.Namespace, workers: int | None, keep: Path | None) -> tuple:
    """(seconds, peak MB over the process tree, job times, work) of one study in a fresh folder."""
    cmd = [sys.executable, "-m", "ncmflow", "study", "--models", args.models, "--ml-models", args.ml_models]
    cmd += ["--quick"] if quick else []
    cmd += ["--workers", str(workers)] if workers else []
    folder = Path(tempfile.mkdtemp())
    peak = [0.0]
    try:
        t0 = time.perf_counter()
        with open(folder / "study.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT)

            def sample() -> None:
                while proc.poll() is None:
                    peak[0] = max(peak[0], _tree_rss_mb(proc.pid))
                    time.sleep(0.5)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            proc.wait()
            sampler.join()
        wall = time.perf_counter() - t0
        text = (folder / "study.log").read_text()
        if proc.returncode:
            sys.exit(f"ncmflow study failed ({proc.returncode}):\n{text[-2000:]}")
        result = (wall, peak[0], job_times(text), work(folder / "ncmflow_data"))
        if keep:
            shutil.copytree(folder, keep / (("quick" if quick else "full") + f"-w{workers or 'auto'}"),
                            dirs_exist_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def report(label: str, mode: str, wall: float, peak: float, times: dict, calls: dict) -> None:
    verdict = "met" if wall <= TARGETS[mode] else "NOT met"
    print(f"{label:22} {wall:8.1f} s ({wall / 60:.1f} min)  target {TARGETS[mode]:.0f} s: {verdict} "
          f"(wall / target {wall / TARGETS[mode]:.2f})  peak {peak:6.0f} MB "
          f"(target {PEAK_TARGET_MB}: {'met' if peak <= PEAK_TARGET_MB else 'NOT met'})")
    if mode in PREVIOUS:
        print(f"{'':22} vs the README's figure before issue 12 ({PREVIOUS[mode]:.0f} s, recorded, not this "
              f"process): {wall / PREVIOUS[mode]:.2f}×")
    header = f"  {'model   stage       potential':34}{'jobs':>5}{'job seconds':>13}"
    print(header + f"{'force calls / relax steps':>28}")
    for key in sorted(times):
        print(f"  {key:34}{len(times[key]):>5}{sum(times[key]):>13.0f}{calls.get(key, 0):>28}")
    total = sum(sum(v) for v in times.values())
    print(f"  {'sum of job times':34}{sum(len(v) for v in times.values()):>5}{total:>13.0f}"
          f"   (÷ wall {total / wall:.2f}: jobs side by side)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time the full study")
    parser.add_argument("--baseline", action="store_true", help="also run with --workers 1")
    parser.add_argument("--models", default="bulk,bare,cpan")
    parser.add_argument("--ml-models", default="chgnet")
    parser.add_argument("--keep", type=Path, help="copy each run's folder (store, report, log) here")
    args = parser.parse_args()
    print(f"ncmflow study ({args.models}; {args.ml_models}), engine mlip, fresh store each run", flush=True)
    for mode in ["quick", "full"] if args.full else ["quick"]:
        wall, peak, times, calls = run(mode == "quick", args, None, args.keep)
        report(f"{mode} (default workers)", mode, wall, peak, times, calls)
        if args.baseline:
            base = run(mode == "quick", args, 1, args.keep)
            report(f"{mode} (--workers 1)", mode, *base)
            print(f"default / one job at a time: {wall / base[0]:.2f}× wall", flush=True)


if __name__ == "__main__":
    main()
