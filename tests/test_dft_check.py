"""The study's DFT check (DFT//ML single points), end to end on a tiny system, and its place in
the study flow and on a cluster.

The tiny system: an H adatom hopping between hollow sites of a one-layer 2×2 Ni(100) sheet
(5 atoms, elements ncmflow's settings know); ASE's EMT (the toy engine's) is the "ML" path, GPAW
LCAO at Γ (minimal basis, no spin: about a minute) gives the DFT single points.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from test_toy_engine import EMT_ENGINE  # registers the "emt" engine

from ncmflow.analysis.dftcheck import agreements, dft_tables, load_checks, verdict, write_dft_check
from ncmflow.inputs.settings import PAPER
from ncmflow.workflows import progress
from ncmflow.workflows.documents import DftCheckDoc
from ncmflow.workflows.engines import get_engine
from ncmflow.workflows.neb import PATHS, BarrierFlowMaker
from ncmflow.workflows.runner import run_flow
from ncmflow.workflows.store import get_store
from ncmflow.workflows.study import QUICK_DFT, StudyConfig, study_flow
from ncmflow.workflows.submit import plan_stages

# cheap GPAW: minimal basis, coarse grid, no spin (the stage's own default is spin-polarized
# from the paper's moments: 5 min here instead of 1)
CHEAP = {"mode": "lcao", "kpts": (1, 1, 1), "h": 0.3, "basis": "sz(dzp)"}
CHEAP_SETTINGS = PAPER.with_changes(spin_polarized=False, energy_tol=1e-4)


def h_on_ni100() -> tuple[Structure, Structure]:
    """H in a hollow site of a one-layer 2×2 Ni(100) sheet (fixed) and in the next hollow along x."""
    from ase.build import add_adsorbate, fcc100

    slab = fcc100("Ni", size=(2, 2, 1))
    add_adsorbate(slab, "H", 0.6, "hollow")
    slab.center(axis=2, vacuum=4.0)
    moved = slab.copy()
    moved.positions[-1, 0] += slab.cell[0, 0] / 2
    fixed = [[t != 0] * 3 for t in slab.get_tags()]  # the Ni layer (tag 1); the adatom (0) moves
    return tuple(AseAtomsAdaptor.get_structure(a).copy(site_properties={"selective_dynamics": fixed})
                 for a in (slab, moved))


def test_the_quick_dft_check_runs_on_the_reduced_models_and_old_keys_stay():
    """Studies saved before the DFT check existed keep their keys (their flows are reloaded)."""
    assert StudyConfig().key == "study-9b2ebaf34de7"  # measured with the code before the check
    assert StudyConfig.create("mlip", quick=True).key == "study-62b0d07fdb22"
    two = StudyConfig.create("mlip", quick=True, ml_models=("chgnet", "sevennet"))
    assert two.key == "study-1a4598e5de86"
    quick = StudyConfig.create("mlip", quick=True, dft_check=True)
    assert {k: getattr(quick, k) for k in QUICK_DFT} == QUICK_DFT
    assert quick.key not in ("study-62b0d07fdb22",) and quick.dft_label.startswith("gpaw LCAO, k 1×1×1")
    # `--quick --dft-check` alone is the README's demonstration (its store was made with the options
    # spelled out)
    assert quick.key == StudyConfig.create("mlip", quick=True, dft_check=True, models=("bare", "cpan"),
                                           ml_models=("chgnet", "sevennet"), sites=1).key
    assert StudyConfig.create("mlip", quick=True, dft_check=True, models=("bulk",)).models == ("bulk",)
    assert StudyConfig.create("mlip", dft_check=True).dft_mode == "pw"  # the full check: the paper's PW


def test_the_dft_points_are_their_own_batch_jobs():
    config = StudyConfig.create("mlip", quick=True, dft_check=True, layers=4, cpan_units=3,
                                models=("bare", "cpan"), sites=1, ml_models=("chgnet",))
    flow = study_flow(config)
    stages = {s.name: s for s in plan_stages(flow)}
    assert sorted(stages) == ["bare", "bare-dft", "compare", "cpan", "cpan-dft"]
    assert stages["bare-dft"].after == ["bare"] and stages["cpan-dft"].after == ["cpan"]
    # the table waits for the checks: the compare batch job's report has them
    assert sorted(stages["compare"].after) == ["bare", "bare-dft", "cpan", "cpan-dft"]
    names = [j["name"] for j in stages["cpan-dft"].jobs]
    # start and end shared by the two paths; a saddle, its single point and a check per path
    assert sorted(names) == sorted(["cpan site 0 chgnet dft start", "cpan site 0 chgnet dft end",
                                    *(f"cpan site 0 chgnet {what} {p}" for p in PATHS
                                      for what in ("saddle", "dft saddle", "dft check"))])


@pytest.mark.requires_gpaw
def test_dft_check_end_to_end_on_a_tiny_system(tmp_path):
    from ncmflow.inputs.gpaw import gpaw_calculator, slab_boundaries
    from ncmflow.inputs.settings import to_ase_atoms
    from ncmflow.workflows.dftcheck import DftCheckMaker
    from ncmflow.workflows.engines.gpaw import with_start_moments

    settings = PAPER.with_changes(fmax=0.05, neb_fmax=0.1)
    engine = get_engine(EMT_ENGINE.name)
    maker = BarrierFlowMaker(relax_maker=engine.relax_maker(settings, False),
                             neb_maker=engine.neb_maker(settings, None), n_images=3)
    start, end = h_on_ni100()
    relaxed = (maker.relax(start, "bare", 0, None, "start"), maker.relax(end, "bare", 0, None, "end"))
    barrier = maker.make(start, end, "bare", {"site": 0}, relaxed=relaxed)
    checker = DftCheckMaker("gpaw", CHEAP_SETTINGS, CHEAP, "gpaw LCAO, k 1×1×1 (test)")
    meta = {"row": "h-ni100", "tags": {"model": "bare", "site": 0, "potential": None, "batch": "bare-dft"}}
    jobs, _ = checker.jobs(relaxed, barrier.output, PATHS, meta)
    from jobflow import Flow

    flow = Flow([*relaxed, barrier, *jobs])
    store = get_store(tmp_path / "db")
    events: list[dict] = []
    with progress.listening(events.append):
        status = run_flow(flow, store, tmp_path / "work")
    assert set(status.values()) == {"ran"} and len(status) == 2 + 3 + 1 + 3  # relax, NEB, dft
    # a single point's SCF iterations are its progress, on its own row and stage
    scf = [e for e in events if e.get("detail", "").startswith("SCF iteration")]
    assert {(e["model"], e["stage"]) for e in scf} == {("bare site 0", f"dft {w}")
                                                       for w in ("start", "end", "saddle A")}
    assert [int(e["detail"].split()[2].rstrip(",")) for e in scf][:3] == [1, 2, 3]

    neb = store.query_one({"name": {"$regex": "ci-neb A"}}, load=True)["output"]
    found = store.query({"name": {"$regex": "dft (start|end|saddle)"}})
    points = {d["metadata"]["stage"]: d["output"] for d in found}
    for which in ("start", "end"):  # the stored SCF cost is GPAW's count, one progress line each
        assert points[f"dft {which}"]["scf_iterations"] == sum(e["stage"] == f"dft {which}" for e in scf) > 2
    checks = load_checks(store)
    assert len(checks) == 1 and isinstance(checks[0], DftCheckDoc)
    check = checks[0]
    # the ML numbers are the NEB's, the DFT ones the stored single points', to the last digit
    assert check.ml_barrier == pytest.approx(neb["forward_barrier"], abs=1e-12)
    assert check.ml_reaction_energy == pytest.approx(neb["reaction_energy"], abs=1e-12)
    assert check.dft_barrier == pytest.approx(points["dft saddle"]["energy"] - points["dft start"]["energy"],
                                              abs=1e-12)
    assert check.saddle_index == neb["saddle_index"] and check.dft == "gpaw LCAO, k 1×1×1 (test)"
    # the saddle point is GPAW's energy of the NEB's climbing image, as a direct calculation gives it
    saddle = neb["images"][neb["saddle_index"]]
    saddle = with_start_moments(Structure.from_dict(saddle))
    atoms = slab_boundaries(to_ase_atoms(saddle))
    atoms.calc = gpaw_calculator(saddle, CHEAP_SETTINGS, "lcao", str(tmp_path / "direct.txt"), symmetry="off",
                                 **{k: v for k, v in CHEAP.items() if k != "mode"})
    assert points["dft saddle"]["energy"] == pytest.approx(atoms.get_potential_energy(), abs=1e-5)
    # physics: the two hollow sites are equivalent, the bridge between them is higher
    assert abs(check.dft_reaction_energy) < 0.05
    assert 0.02 < check.dft_barrier < 1.5 and check.ml_barrier > 0.02
    print(f"EMT barrier {check.ml_barrier:.3f} eV, DFT//EMT {check.dft_barrier:.3f} eV, "
          f"ΔE DFT//EMT {check.dft_reaction_energy:+.4f} eV")

    # a rerun computes nothing
    again = run_flow(flow, get_store(tmp_path / "db"), tmp_path / "work")
    assert set(again.values()) == {"reused"}

    # the report's part: the csv, the plot, the tables and the one line
    files, tables = write_dft_check(store, tmp_path)
    rows = list(csv.DictReader(files["dft_csv"].open()))
    assert [(r["potential"], r["model"], r["path"]) for r in rows] == [("", "bare", "A")]
    assert float(rows[0]["dft_barrier"]) == pytest.approx(check.dft_barrier, abs=1e-6)
    assert files["dft_plot"].stat().st_size > 10_000
    assert tables[0].title == "DFT check: which potential to believe"
    mad = np.mean([abs(check.ml_barrier - check.dft_barrier),
                   abs(check.ml_reaction_energy - check.dft_reaction_energy)])
    assert agreements(checks)[0].mad == pytest.approx(mad, abs=1e-12)
    assert verdict(checks).startswith(f"only emt was checked: mean |ML − DFT//ML| {mad:.3f} eV")


def _doc(potential: str, model: str, site: int, ml: tuple[float, float],
         dft: tuple[float, float]) -> DftCheckDoc:
    return DftCheckDoc(model=model, site=site, engine="mlip", potential=potential, dft="x",
                       ml_energies={}, dft_energies={}, ml_barrier=ml[0], ml_reaction_energy=ml[1],
                       dft_barrier=dft[0], dft_reaction_energy=dft[1], converged=True)


def test_the_verdict_names_the_potential_closest_to_dft():
    checks = [_doc("a", "bare", 0, (1.0, 0.5), (1.2, 0.4)), _doc("a", "cpan", 0, (1.5, 0.9), (1.4, 0.7)),
              _doc("b", "bare", 0, (2.0, 1.5), (1.2, 0.4)), _doc("b", "cpan", 0, (1.0, -0.5), (1.4, 0.7))]
    ranked = agreements(checks)
    assert [a.potential for a in ranked] == ["a", "b"]
    assert ranked[0].mad == pytest.approx((0.2 + 0.1 + 0.1 + 0.2) / 4)
    assert ranked[1].mad == pytest.approx((0.8 + 1.1 + 0.4 + 1.2) / 4)
    assert ranked[1].worst == pytest.approx(1.2)
    line = verdict(checks)
    assert line.startswith("DFT favours a on this system: mean |ML − DFT//ML| 0.150 eV")
    assert "b 0.875 eV (0.725 ± 0.170 eV further, 4 paired values)" in line
    lead = dft_tables(checks)[0].lead
    assert lead[1] == ("cPAN − bare barrier: a ML +0.500 vs DFT//ML +0.200 eV (same sign, 0.300 off); "
                       "b ML -1.000 vs DFT//ML +0.200 eV (opposite sign, 1.200 off)")
    # nearly equal deviations, scattered: no winner is claimed
    tie = [_doc("a", "bare", 0, (1.0, 0.5), (2.0, 2.5)), _doc("a", "cpan", 0, (1.0, 0.5), (1.1, 0.6)),
           _doc("b", "bare", 0, (1.0, 0.5), (1.1, 0.6)), _doc("b", "cpan", 0, (1.0, 0.5), (2.1, 2.5))]
    assert verdict(tie).startswith("no potential is closer to DFT beyond the path-to-path scatter: a ")
    diff = next(t for t in dft_tables(checks) if t.title.startswith("DFT check: cPAN − bare"))
    # cPAN − bare barrier: a ML +0.5, DFT//ML +0.2; b ML −1.0, DFT//ML +0.2 (one pair: no ± )
    assert ("a", "barrier", "1", "+0.500", "+0.200") in diff.rows
    assert ("b", "barrier", "1", "-1.000", "+0.200") in diff.rows


def test_the_dft_energies_of_each_potentials_end_points_side_by_side():
    def doc(potential, model, start, end, moments):
        return DftCheckDoc(model=model, site=0, engine="mlip", potential=potential, dft="x", ml_energies={},
                           dft_energies={"start": start, "saddle": start + 1, "end": end}, ml_barrier=1,
                           ml_reaction_energy=0, dft_barrier=1, dft_reaction_energy=end - start,
                           dft_moments={"start": moments[0], "saddle": 0.0, "end": moments[1]})
    checks = [doc("a", "bare", -238.339, -235.285, (7.83, 13.5)),
              doc("b", "bare", -236.630, -233.617, (6.41, 10.57)),
              doc("a", "cpan", -343.293, -339.394, (6.12, 12.01))]  # cPAN: only a, nothing to compare
    table = next(t for t in dft_tables(checks) if t.title.endswith("relaxed end points"))
    assert table.rows == [("bare", "0", "start", "0.000", "1.709", "7.83", "6.41"),
                          ("bare", "0", "end", "0.000", "1.668", "13.50", "10.57")]
    assert table.lead == ["DFT energy of each potential's relaxed end points, same atoms: a lowest in 2 "
                          "of 2, on average 0.000 eV above the lowest; b lowest in 0 of 2, on average "
                          "1.689 eV above the lowest"]


def test_a_jobs_own_progress_is_a_line_of_its_row_in_a_log_file():
    """`say` from inside a running job (GPAW's SCF hook) reaches the display, throttled per row."""
    import io

    from rich.console import Console

    from ncmflow.workflows.live import StudyDisplay

    out = io.StringIO()
    with StudyDisplay(Console(file=out), ("cpan site 0 chgnet",)):
        with progress.running({"model": "cpan site 0 chgnet", "stage": "dft start"}):
            progress.say("SCF iteration 1, DFT energy -334.0203 eV")
            progress.say("SCF iteration 2, DFT energy -334.1049 eV")  # within 10 s: not printed
        progress.say("outside any job")  # no row: the comparison's
    lines = out.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "cpan site 0 chgnet: SCF iteration 1, DFT energy -334.0203 eV", "compare: outside any job"]
