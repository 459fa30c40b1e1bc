"""Blob writes and lookups in the embedded store: maggma's MontyStore vs ncmflow's KeyedMontyStore.

A data collection filled with ``--blobs`` relaxation-trajectory blobs (40 frames × 109 atoms of
coordinates and forces, ~0.2 MB each), then timed the way jobflow uses it: writing one more
blob (``update(..., key="blob_uuid")``) and resolving one reference (``query`` with
``{"blob_uuid": {"$in": three keys}}``). Same process, same documents, medians of 5.

    python benchmarks/store_blobs.py [--blobs 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

import numpy as np
from _timing import median_time


def fill(store, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    frames = [{"coords": rng.random((109, 3)).tolist(), "forces": rng.random((109, 3)).tolist()}
              for _ in range(40)]
    keys = [str(uuid.uuid4()) for _ in range(n)]
    for key in keys:
        store.update([{"blob_uuid": key, "data": {"frames": frames}}], key="blob_uuid")
    return keys


def main() -> None:
    from maggma.stores import MontyStore

    from ncmflow.workflows.blobstore import KeyedMontyStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=60)
    args = parser.parse_args()
    figures = {}
    for cls in (MontyStore, KeyedMontyStore):
        store = cls("outputs_data", database_path=tempfile.mkdtemp(), database_name="ncmflow",
                    storage="sqlite", key="blob_uuid")
        store.connect()
        t0 = time.perf_counter()
        keys = fill(store, args.blobs)
        filled = time.perf_counter() - t0
        write = median_time(lambda s=store: s.update([{"blob_uuid": str(uuid.uuid4()), "data": 1}],
                                               key="blob_uuid"))
        lookup = median_time(lambda s=store, k=keys: list(s.query({"blob_uuid": {"$in": k[:3]}},
                                                           properties=["blob_uuid", "data"])))
        figures[cls.__name__] = (filled, write, lookup)
    base = figures["MontyStore"]
    print(f"data collection of {args.blobs} trajectory blobs (40 frames x 109 atoms)")
    for name, (filled, write, lookup) in figures.items():
        print(f"{name:16} fill {filled:7.2f} s   one more write {write * 1000:8.1f} ms "
              f"({write / base[1]:.3f}×)   lookup of 3 blobs {lookup * 1000:8.1f} ms "
              f"({lookup / base[2]:.3f}×)")


if __name__ == "__main__":
    main()
