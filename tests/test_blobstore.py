"""The embedded store's data collection: blobs by key in one row, never one missed."""

from __future__ import annotations

import numpy as np
from jobflow import job, run_locally
from maggma.stores import MontyStore

from ncmflow.workflows.blobstore import KeyedMontyStore
from ncmflow.workflows.store import get_store


def _stores(tmp_path):
    common = {"database_path": str(tmp_path), "database_name": "db", "storage": "sqlite", "key": "blob_uuid"}
    keyed, plain = KeyedMontyStore("data", **common), MontyStore("data", **common)
    keyed.connect()
    plain.connect()
    return keyed, plain


def test_blobs_by_key_come_from_their_rows_and_others_from_the_scan(tmp_path, monkeypatch):
    keyed, plain = _stores(tmp_path)
    keyed.update([{"blob_uuid": f"k{i}", "data": [i, i + 0.5]} for i in range(3)])
    plain.update([{"blob_uuid": "p0", "data": "written by a plain MontyStore"}])
    keyed.update({"blob_uuid": "k1", "data": "rewritten"})  # the same key again: replaced
    assert keyed.count() == 4
    assert keyed._read(["k2", "k0"]) == [{"_id": "k2", "blob_uuid": "k2", "data": [2, 2.5]},
                                         {"_id": "k0", "blob_uuid": "k0", "data": [0, 0.5]}]
    assert keyed._read(["k0", "p0"]) is None  # p0 is not stored under its key: scan instead
    scans = []
    original = MontyStore.query

    def counting(self, *args, **kwargs):
        scans.append(kwargs.get("criteria"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MontyStore, "query", counting)
    got = {d["blob_uuid"]: d["data"] for d in keyed.query({"blob_uuid": {"$in": ["k1", "k0"]}},
                                                          properties=["blob_uuid", "data"])}
    assert got == {"k1": "rewritten", "k0": [0, 0.5]} and scans == []
    got = {d["blob_uuid"]: d["data"] for d in keyed.query({"blob_uuid": {"$in": ["k1", "p0"]}},
                                                          properties=["data", "blob_uuid"])}
    assert got == {"k1": "rewritten", "p0": "written by a plain MontyStore"} and len(scans) == 1
    assert [d["blob_uuid"] for d in keyed.query({"data": "rewritten"})] == ["k1"]  # other criteria


@job(data=["positions"])
def _trajectory(n: int) -> dict:
    return {"n": n, "positions": np.arange(3.0 * n).reshape(n, 3).tolist()}


def test_job_outputs_with_blobs_roundtrip_through_the_embedded_store(tmp_path):
    store = get_store(tmp_path / "store")
    assert isinstance(store.additional_stores["data"], KeyedMontyStore)
    jobs = [_trajectory(n) for n in (2, 4)]
    run_locally(jobs, store=store, root_dir=tmp_path, log=False)
    reopened = get_store(tmp_path / "store")  # another process would see the same
    for j, n in zip(jobs, (2, 4), strict=True):
        out = reopened.get_output(j.uuid, load=True)
        assert out["positions"] == np.arange(3.0 * n).reshape(n, 3).tolist()
        unloaded = reopened.get_output(j.uuid, load=False)
        assert reopened.additional_stores["data"]._read([unloaded["positions"]["blob_uuid"]]) is not None
