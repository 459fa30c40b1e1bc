"""A process killed at any write around a job's Response loses neither the Response nor the output.

jobflow's ``Job.run`` writes the output, then returns the Response; the runner recorded the
Response after. A kill between the two left a finished job whose detour (replace, addition,
stops) was gone for good: the rerun reused the job. The runners now record the Response before
the output (``flowstate.run_job``). The kill is an exception no ``except Exception`` catches,
raised at the write named, once.
"""

from __future__ import annotations

import pytest
from test_response_semantics import copies, docs, dynamic

from ncmflow.workflows import flowstate
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import get_store

pytestmark = [pytest.mark.filterwarnings("ignore:Some jobs are not connected")]


class Killed(BaseException):
    """Stands for SIGKILL: nothing on the way up writes anything."""


@pytest.mark.parametrize("dies_at", ["the response record", "the output document"])
def test_a_kill_around_a_response_loses_nothing(tmp_path, monkeypatch, dies_at):
    flow = dynamic()
    reference = get_store(tmp_path / "ref")
    run_flow(copies(flow, 1)[0], reference, tmp_path / "ref-work")

    store = get_store(tmp_path / "db")
    armed = {"on": True}

    def dying(write, is_it):
        def wrapped(*args, **kwargs):
            if armed["on"] and is_it(*args):
                armed["on"] = False
                raise Killed
            return write(*args, **kwargs)
        return wrapped

    if dies_at == "the response record":
        monkeypatch.setattr(flowstate, "_write", dying(
            flowstate._write, lambda _s, collection, ds: collection == flowstate.RESPONSES_COLLECTION
            and ds[0]["name"] == "detoured"))
    else:
        store.docs_store.update = dying(store.docs_store.update,
                                        lambda ds, *_: any(d.get("name") == "detoured" for d in ds))
    with pytest.raises(Killed):
        run_flow(copies(flow, 1)[0], store, tmp_path / "work")
    assert not armed["on"]
    monkeypatch.undo()

    again = get_store(tmp_path / "db")
    statuses = run_flow(copies(flow, 1)[0], again, tmp_path / "work")
    assert sorted(statuses.values()).count("reused") == 2  # split and total, before the kill
    assert docs(get_store(tmp_path / "db")) == docs(reference)  # the detour and all after it
