"""Latency of `ncmflow --help` and `ncmflow query` on a store of 10^4 job outputs.

Targets (issue 12): `--help` ≤ 0.3 s wall; `query` ≤ 1 s wall and ≤ 100 ms in-process, on
2 idle cores. Each figure is set beside the way it was done before, run on this machine now:
`--help` with typer's markdown help (which imports markdown_it), `query` through jobflow's
``JobStore.query`` (montydb decodes every document). The store is built in a temporary
folder with documents shaped like the study's (84-atom structures, NEB results whose arrays
sit in the data store, GPAW single points), ~20 kB each on average.

    python benchmarks/cli_latency.py [--docs 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from _timing import median_time

NCMFLOW = [sys.executable, "-m", "ncmflow"]
# the former `--help`: typer's markdown help, rich.markdown (markdown_it, pygments) imported
OLD_HELP = ("import sys, rich.markdown, typer.rich_utils; from ncmflow.cli import app; "
            "app.rich_markup_mode = 'markdown'; sys.argv = ['ncmflow', '--help']; app()")
# the former `query`: the store opened through jobflow and queried with montydb
OLD_QUERY = ("import sys; import ncmflow.analysis.records as r; from ncmflow.cli import app; "
             "from ncmflow.workflows.store import get_store; "
             "r.query_records = lambda s, **kw: r.scan_records(get_store(s), **kw); "
             "sys.argv = ['ncmflow', *sys.argv[1:]]; app()")
QUERY = ["query", "--kind", "neb", "--model", "cpan", "--engine", "gpaw"]


def structure(rng: random.Random, n: int = 84) -> dict:
    """A pymatgen Structure.as_dict() of an n-atom Li–Ni–O cell, with magnetic moments."""
    a = 8.6
    sites = []
    for i in range(n):
        el = ("Li", "Ni", "O", "O")[i % 4]
        abc = [rng.random() for _ in range(3)]
        sites.append({"species": [{"element": el, "occu": 1}], "abc": abc, "xyz": [x * a for x in abc],
                      "properties": {"magmom": rng.uniform(-1, 1) if el == "Ni" else 0.0,
                                     "selective_dynamics": [True, True, i % 7 != 0]},
                      "label": el})
    return {"@module": "pymatgen.core.structure", "@class": "Structure", "charge": 0, "properties": {},
            "lattice": {"matrix": [[a, 0, 0], [0, a, 0], [0, 0, 14.2]], "pbc": [True, True, True]},
            "sites": sites}


def blob(rng: random.Random) -> dict:
    return {"@module": "jobflow.core.store", "@class": "BlobReference",
            "blob_uuid": str(uuid.UUID(int=rng.getrandbits(128))), "store": "data"}


def job_doc(i: int, rng: random.Random, start: datetime) -> dict:
    """One job document as jobflow stores it: outputs of relax, interpolate, NEB, static, LCAO jobs."""
    model = ("bulk", "bare", "cpan")[i % 3]
    engine = ("mlip", "mlip", "gpaw")[(i // 3) % 3]
    meta = {"model": model, "site": i % 4, "potential": "chgnet" if engine == "mlip" else None,
            "engine": engine, "study": f"s{i % 5}"}
    stage = ("relax start", "relax end", "interpolate", "neb", "static", "lcao")[(i // 9) % 6]
    meta["stage"] = stage
    if stage.startswith("relax") or stage == "static":
        output = {"@module": "atomate2.forcefields.schemas", "@class": "ForceFieldTaskDocument",
                  "structure": structure(rng), "forcefield_name": "CHGNet", "dir_name": f"/tmp/job{i}",
                  "output": {"energy": rng.uniform(-600, -500), "n_steps": rng.randint(10, 90),
                             "forces": [[rng.gauss(0, 0.02) for _ in range(3)] for _ in range(84)],
                             "stress": [rng.gauss(0, 0.1) for _ in range(6)]},
                  "input": {"relax_cell": False, "steps": 500, "fmax": 0.05}}
    elif stage == "interpolate":
        meta["path"] = "AB"[i % 2]
        output = [blob(rng) for _ in range(5)]
    elif stage == "neb":
        meta["path"] = "AB"[i % 2]
        converged = rng.random() > 0.1
        output = {"@module": "ncmflow.workflows.documents", "@class": "BarrierDoc", "model": model,
                  "engine": engine, "site": i % 4, "path": meta["path"], "converged": converged,
                  "reason": None if converged else "max steps", "forward_barrier": rng.uniform(0.5, 3),
                  "images": blob(rng), "forces": blob(rng), "energies": [rng.uniform(-600, -500)] * 7,
                  "max_forces": [rng.uniform(0, 0.05) for _ in range(7)], "force_calls": 300,
                  "ni_n_distances": [rng.uniform(1.9, 2.3) for _ in range(7)], "hop_kind": "bulk"}
    else:
        meta["part"] = ("slab", "cpan", "interface")[i % 3]
        output = {"energy": rng.uniform(-900, -800), "magmom": rng.uniform(0, 20),
                  "density_cube": f"/tmp/job{i}/density.cube", "structure": structure(rng, 60)}
    done = start + timedelta(seconds=37 * i)
    return {"uuid": str(uuid.UUID(int=rng.getrandbits(128))), "index": 1, "name": stage.replace(" ", "_"),
            "output": output, "completed_at": done.isoformat(), "metadata": meta,
            "hosts": [str(uuid.UUID(int=rng.getrandbits(128)))]}


def build_store(folder: Path, n: int) -> None:
    """n documents written through maggma's MontyStore (the embedded store's own encoding)."""
    from ncmflow.workflows.store import get_store

    rng = random.Random(12)
    docs = get_store(folder).docs_store
    start = datetime(2026, 1, 1)
    for first in range(0, n, 1000):  # montydb's update() searches per document: insert in bulk
        docs._collection.insert_many([job_doc(i, rng, start) for i in range(first, min(n, first + 1000))])


def wall(args: list[str], runs: int, cwd: Path | None = None) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(args, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def in_process(func, runs: int) -> float:
    return median_time(func, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from ncmflow.analysis.records import query_records, scan_records
    from ncmflow.workflows.store import get_store

    help_new = wall([*NCMFLOW, "--help"], args.runs)
    help_old = wall([sys.executable, "-c", OLD_HELP], args.runs)
    folder = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        build_store(folder / "db", args.docs)
        built = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (folder / "db").rglob("*.collection")) / 1e6
        t0 = time.perf_counter()
        first = query_records(folder / "db")
        summary = time.perf_counter() - t0
        store = get_store(folder / "db")
        kw = {"kind": "neb", "model": "cpan", "engine": "gpaw"}
        old = scan_records(store, **kw)
        assert old == query_records(folder / "db", **kw) and len(first) == args.docs
        old_all = in_process(lambda: scan_records(store), 1)
        old_one = in_process(lambda: scan_records(store, **kw), 1)
        new_all = in_process(lambda: query_records(folder / "db"), args.runs)
        new_one = in_process(lambda: query_records(folder / "db", **kw), args.runs)
        docs = store.docs_store._collection
        rng = random.Random(99)
        t0 = time.perf_counter()
        docs.insert_many([job_doc(i, rng, datetime(2027, 1, 1)) for i in range(10)])
        after = query_records(folder / "db")
        added = time.perf_counter() - t0
        assert len(after) == args.docs + 10
        cli = [*NCMFLOW, *QUERY, "--store", str(folder / "db")]
        query_new = wall(cli, args.runs)
        query_new_json = wall([*NCMFLOW, "query", "--json", "--store", str(folder / "db")], args.runs)
        query_new_table = wall([*NCMFLOW, "query", "--store", str(folder / "db")], 3)
        query_old = wall([sys.executable, "-c", OLD_QUERY, *QUERY, "--store", str(folder / "db")], 1)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"store: {args.docs} job documents, {size:.0f} MB of montydb sqlite (written in {built:.0f} s)")
    print(f"{'':56} {'now':>9} {'before':>9} {'speed-up':>9}  target")
    rows = [("ncmflow --help, wall (median)", help_new, help_old, "≤ 0.3 s"),
            (f"ncmflow {' '.join(QUERY)}, wall", query_new, query_old, "≤ 1 s"),
            ("query_records(kind, model, engine), in-process", new_one, old_one, "≤ 0.1 s"),
            (f"query_records(), all {args.docs} records, in-process", new_all, old_all, ""),
            ]
    for label, now, before, target in rows:
        print(f"{label:56} {now:8.3f}s {before:8.3f}s {before / now:8.1f}×  {target}")
    print(f"ncmflow query --json (all {args.docs} records), wall: {query_new_json:.3f} s; "
          f"as a table: {query_new_table:.3f} s (rich lays out every row)")
    print(f"summary built on the first query: {summary:.1f} s (once per store); "
          f"10 documents added + query: {added:.3f} s")


if __name__ == "__main__":
    main()
