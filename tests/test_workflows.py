"""Workflows: registry, store selection, resumable flows, NEB failure modes."""

from __future__ import annotations

import pytest
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder, jsanitize

from ncmflow.inputs.settings import PAPER
from ncmflow.structures import ni_hop_endpoints
from ncmflow.workflows.engines import engine_names, get_engine
from ncmflow.workflows.engines.castep import parse_ts_barriers
from ncmflow.workflows.neb import CiNebMaker
from ncmflow.workflows.runner import saved_flow
from ncmflow.workflows.store import get_store
from ncmflow.workflows.study import StudyConfig, study_flow


def memory_store() -> JobStore:
    return JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})


def run_job(job, tmp_path):
    responses = run_locally(job, store=memory_store(), root_dir=tmp_path, log=False)
    return responses[job.uuid][1].output


def test_registry_knows_the_engines_and_rejects_others():
    assert {"mlip", "vasp", "castep"} <= set(engine_names())
    with pytest.raises(ValueError, match=r"unknown engine 'qe'.*mlip"):
        get_engine("qe")


def test_cluster_engines_say_what_is_missing():
    assert "vasp_std" in get_engine("vasp").missing()
    assert "castep" in get_engine("castep").missing()
    assert get_engine("mlip").missing() is None


@pytest.mark.parametrize("engine", engine_names())
def test_study_flow_serialises_for_every_engine(engine):
    flow = study_flow(StudyConfig.create(engine, models=("bulk",), sites=1))
    back = MontyDecoder().process_decoded(jsanitize(flow.as_dict(), strict=True, allow_bson=True))
    jobs = [j for j, _ in back.iterflow()]
    tag = "bulk site 0" + (" chgnet" if engine == "mlip" else "")
    # LST/QST (castep) uses only the end points: no second, denser band
    paths = ["A", "B"] if get_engine(engine).neb_uses_images else ["A"]
    assert (engine == "castep") == (paths == ["A"])
    assert [j.name for j in jobs[:2]] == [f"{tag} relax start", f"{tag} relax end"]
    assert sorted({j.metadata["path"] for j in jobs if j.metadata.get("stage") == "neb"}) == paths
    assert jobs[-1].name == "compare barriers"


def test_study_flow_runs_every_site_and_potential_and_shares_equal_relaxations():
    config = StudyConfig.create("mlip", quick=True, models=("bulk", "bare"), sites=3,
                                ml_models=("chgnet", "sevennet"))
    jobs = [j for j, _ in study_flow(config).iterflow()]
    nebs = [j for j in jobs if j.metadata.get("stage") == "neb"]
    assert len(nebs) == 2 * 2 * 3 * 2  # potentials × models × sites × paths
    assert {(j.metadata["potential"], j.metadata["model"], j.metadata["site"]) for j in nebs} == {
        (p, m, k) for p in ("chgnet", "sevennet") for m in ("bulk", "bare") for k in range(3)}
    relax = [j for j in jobs if str(j.metadata.get("stage", "")).startswith("relax")]
    # bulk sites 0 and 2 come from the same Li ordering: their start is relaxed once per potential
    assert len(relax) == 2 * (2 * 3 * 2 - 1)
    makers = {j.metadata["potential"]: j.function_args for j in nebs if j.metadata["path"] == "A"}
    assert {p: j.maker.settings.ml_model for p, j in
            ((j.metadata["potential"], j) for j in nebs)} == {"chgnet": "chgnet", "sevennet": "sevennet"}
    assert makers  # both potentials have a path A
    path_b = next(j for j in nebs if j.metadata["path"] == "B")
    assert path_b.maker.optimizer == config.confirm_optimizer
    assert path_b.maker.settings.neb_steps == 2 * config.neb_steps
    with pytest.raises(ValueError, match="unknown hop kind"):
        StudyConfig.create("mlip", hop="sideways")


def test_saved_flow_keeps_uuids(tmp_path):
    store = get_store(tmp_path / "db")
    config = StudyConfig.create("mlip", quick=True, models=("bulk",))
    first = saved_flow(store, config.key, lambda: study_flow(config))
    again = saved_flow(store, config.key, lambda: study_flow(config))
    assert [j.uuid for j in first.jobs] == [j.uuid for j in again.jobs]
    assert StudyConfig.create("mlip", quick=False).key != config.key


def test_store_from_jobflow_config(tmp_path, monkeypatch):
    config = tmp_path / "jobflow.yaml"
    config.write_text(f"JOB_STORE:\n  docs_store:\n    type: MontyStore\n    collection_name: outs\n"
                      f"    database_path: {tmp_path / 'user_db'}\n  additional_stores:\n"
                      f"    data:\n      type: MontyStore\n      collection_name: blobs\n"
                      f"      database_path: {tmp_path / 'user_db'}\n")
    monkeypatch.setenv("JOBFLOW_CONFIG_FILE", str(config))
    store = get_store()
    assert store.docs_store.collection_name == "outs"


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: p.write_text("x"), "is a file"),
    (lambda p: None, "does not exist"),
])
def test_bad_store_locations(tmp_path, setup, message):
    path = tmp_path / ("store" if message == "is a file" else "missing.yaml")
    setup(path)
    with pytest.raises(ValueError, match=message):
        get_store(path)


def test_malformed_store_config(tmp_path):
    bad = tmp_path / "store.yaml"
    bad.write_text("docs_store: [unclosed\n")
    with pytest.raises(ValueError, match="malformed store config"):
        get_store(bad)


def test_drifted_end_point_is_not_a_barrier(tmp_path):
    start, _ = ni_hop_endpoints("bulk")
    doc = run_job(CiNebMaker().make([start, start.copy(), start.copy()], "bulk"), tmp_path)
    assert not doc.converged and doc.forward_barrier is None
    assert "drifted back" in doc.reason


def test_neb_out_of_steps_is_recorded_unconverged(tmp_path):
    from ncmflow.structures.path import neb_images

    images = neb_images(*ni_hop_endpoints("bulk"), n_images=3, method="linear")
    maker = CiNebMaker(settings=PAPER.with_changes(neb_steps=2, neb_fmax=0.01))
    doc = run_job(maker.make(images, "bulk"), tmp_path)
    assert doc.converged is False and doc.steps == 2
    assert "not converged" in doc.reason
    assert doc.force_calls >= 3 * 2  # three moving images, two iterations
    assert len(doc.forces) == 5 and len(doc.forces[0]) == len(images[0])


def test_castep_ts_output_parsing():
    text = "LST/QST ...\n Barrier from reactant =   3.3612 eV\n Barrier from product =  0.9120 eV\n"
    assert parse_ts_barriers(text) == {"reactant": 3.3612, "product": 0.912}
    with pytest.raises(ValueError, match="did not finish"):
        parse_ts_barriers("Total energy corrected for finite basis set = -1234 eV")


def test_neb_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A killed NEB (walltime, scancel) restarts from the images it last saved, not from scratch."""
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    from ncmflow.structures.path import neb_images
    from ncmflow.workflows.neb import CHECKPOINT

    images = neb_images(*ni_hop_endpoints("bulk"), n_images=3)
    saved = [AseAtomsAdaptor.get_atoms(s) for s in images]
    saved[2].positions[5] += [0.1, -0.2, 0.05]
    # what the killed attempt had done, and ODE's step size then
    saved[0].info.update(neb_steps=7, neb_calls=21, neb_wall=3.5, neb_h=0.0123)
    monkeypatch.chdir(tmp_path)
    write(CHECKPOINT, saved, format="extxyz")
    frames, done = CiNebMaker()._frames(images)
    assert done == {"steps": 7, "calls": 21, "wall": 3.5, "h": 0.0123, "resumed": True}  # going on from there
    assert (frames[2].positions[5] - saved[2].positions[5]) == pytest.approx([0, 0, 0], abs=1e-6)
    (tmp_path / CHECKPOINT).unlink()
    fresh, done = CiNebMaker()._frames(images)
    assert done == {"steps": 0, "calls": 0, "wall": 0.0, "h": None, "resumed": False}
    assert (fresh[2].positions[5] - images[2].cart_coords[5]) == pytest.approx([0, 0, 0], abs=1e-6)


def test_exploded_end_point_is_not_a_barrier(tmp_path):
    start, end = ni_hop_endpoints("bulk")
    broken = end.copy()
    broken.translate_sites([1], broken[0].coords - broken[1].coords + [0.3, 0, 0], frac_coords=False)
    doc = run_job(CiNebMaker().make([start, start.copy(), broken], "bulk"), tmp_path)
    assert not doc.converged and "exploded" in doc.reason


def _connect_many(folder: str) -> list[str]:
    errors = []
    for _ in range(15):
        try:
            get_store(folder).close()
        except ValueError as exc:
            errors.append(str(exc))
    return errors


def test_processes_connecting_to_one_embedded_store_at_once(tmp_path):
    """montydb's config file is rewritten on connect; without the connect lock 58 of these 90
    connects failed ("Empty module name") — e.g. `ncmflow status` beside a collect batch job."""
    from multiprocessing import get_context

    with get_context("fork").Pool(6) as pool:
        errors = [e for errs in pool.map(_connect_many, [str(tmp_path / "store")] * 6) for e in errs]
    assert errors == []


def test_cpan_subsurface_path_records_the_ni_n_bond_breaking(tmp_path):
    """A 2-step NEB on the unrelaxed cPAN end points: the document carries the site's identity
    and the Ni–N distance of every image (2.0 Å at the start, the N left behind at the end)."""
    from ncmflow.workflows.neb import interpolate_images

    start, end = ni_hop_endpoints("cpan", "subsurface", 0)
    images = run_job(interpolate_images(start, end, 3), tmp_path)
    info = {"site": 0, "hop_kind": "subsurface", "hop_depth": start.properties["hop_depth"],
            "moved_index": start.properties["moved_index"], "n_index": start.properties["n_index"],
            "path": "A"}
    doc = run_job(get_engine("mlip").neb_maker(PAPER.with_changes(neb_steps=2)).make(images, "cpan", info),
                  tmp_path)
    assert (doc.site, doc.hop_kind, doc.path, doc.potential) == (0, "subsurface", "A", "chgnet")
    assert doc.hop_depth == pytest.approx(2.04, abs=0.01) and doc.moved_index == info["moved_index"]
    assert len(doc.ni_n_distances) == 5
    assert doc.ni_n_distances[0] == pytest.approx(2.0, abs=0.05)  # barely moved in 2 steps
    assert doc.ni_n_distances[-1] >= doc.ni_n_distances[0] + 1.0
    assert doc.ni_n_distances == pytest.approx(
        [s.get_distance(info["moved_index"], info["n_index"]) for s in doc.images], abs=1e-9)
    assert doc.path_method == "idpp, 3 images, improvedtangent, ode"
