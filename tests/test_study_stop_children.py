"""A relaxation that returns ``Response(stop_children=True)`` (as atomate2's VASP jobs do when a
calculation fails) stops its model's interpolation and NEB; the other models finish and the
study's table and report say why the stopped model has no barrier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from jobflow import Maker, Response, job
from pydantic import BaseModel
from pymatgen.core import Structure

from ncmflow.inputs.settings import PAPER, DftSettings, has_vacuum
from ncmflow.workflows.engines import Engine, Tolerances, register
from ncmflow.workflows.neb import CiNebMaker
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import get_store
from ncmflow.workflows.study import NOT_RUN, StudyConfig, study_flow


class Flat(Calculator):
    """E = 0, F = 0 everywhere: every NEB converges at once, in microseconds."""

    implemented_properties = ("energy", "free_energy", "forces")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "free_energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


class Relaxed(BaseModel):
    structure: Structure
    state: str


@dataclass
class GiveUpOnBareSlabs(Maker):
    """Returns its input as relaxed; on the bare slab it reports failure and stops its children."""

    name: str = "flat relax"

    @job
    def make(self, structure: Structure) -> Response:
        failed = has_vacuum(structure) and "N" not in structure.symbol_set
        return Response(output=Relaxed(structure=structure, state="failed" if failed else "successful"),
                        stop_children=failed)


def relax_maker(settings: DftSettings = PAPER, relax_cell: bool = False) -> GiveUpOnBareSlabs:
    return GiveUpOnBareSlabs()


def neb_maker(settings: DftSettings = PAPER, optimizer: str | None = None) -> CiNebMaker:
    return CiNebMaker(engine="flat", settings=settings, **({"optimizer": optimizer} if optimizer else {}))


def never(*args, **kwargs):
    raise AssertionError("not used here")


register(Engine(name="flat", description="flat energy surface (test)", relax_maker=relax_maker,
                static_maker=never, neb_maker=neb_maker, write_inputs=never,
                read_tolerances=lambda job, folder: Tolerances(0.0, 0),
                calculator=lambda settings=PAPER, stress=True: Flat()))


def test_stopped_relaxation_stops_its_model_only(tmp_path: Path) -> None:
    config = StudyConfig.create("flat", quick=True, models=("bulk", "bare"), sites=1)
    flow = study_flow(config)
    store = get_store(tmp_path / "db")
    status = run_flow(flow, store, tmp_path)
    jobs = {j.uuid: j for j, _ in flow.iterflow()}
    by_stage = {}
    for uuid, state in status.items():
        meta = jobs[uuid].metadata
        by_stage.setdefault((meta.get("model"), meta.get("stage")), set()).add(state)
    assert by_stage[("bare", "interpolate")] == {"stopped"} and by_stage[("bare", "neb")] == {"stopped"}
    assert by_stage[("bulk", "neb")] == {"ran"} and by_stage[(None, "compare")] == {"ran"}
    table = store.query_one({"uuid": flow.output.uuid}, load=True)["output"]["rows"]
    assert [(r["model"], r["path"], r["converged"], r["reason"]) for r in table] == [
        ("bulk", "A", True, None), ("bulk", "B", True, None),
        ("bare", "A", False, NOT_RUN), ("bare", "B", False, NOT_RUN)]
    assert [r["forward_barrier"] for r in table] == [0.0, 0.0, None, None]
    # a rerun computes nothing and still knows what was stopped
    again = run_flow(flow, store, tmp_path)
    assert {s for u, s in again.items() if status[u] == "stopped"} == {"stopped"}
    assert {s for u, s in again.items() if status[u] == "ran"} == {"reused"}

    from ncmflow.analysis.barriers import write_report

    csv = (Path(write_report(store, tmp_path / "report")["csv"])).read_text().splitlines()
    bare = [line for line in csv if line.startswith("bare,")]
    assert len(bare) == 2 and all(NOT_RUN in line for line in bare)
