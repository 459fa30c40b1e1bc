"""The barrier comparison from a store of hand-made BarrierDocs whose statistics are known exactly."""

from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import numpy as np
import pytest
from jobflow import Flow, JobStore, job, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from ncmflow.analysis import barriers as report
from ncmflow.analysis.barriers import barrier_query, load_barriers, profile, write_report
from ncmflow.analysis.statistics import (
    attribution,
    distributions,
    mean_stderr,
    paired_differences,
    pooled_difference,
    site_pairs,
)
from ncmflow.workflows.documents import BarrierDoc, BarrierRow

ANALYSIS = Path(report.__file__).parent
PNG = b"\x89PNG\r\n\x1a\n"
N_IMAGES = 5
pytestmark = pytest.mark.filterwarnings("ignore:Some jobs are not connected", "ignore:cd is deprecated")


def energies(forward: float, reaction: float) -> list[float]:
    """Five images whose highest is the middle one: with zero forces the spline peaks there."""
    return [0.0, 0.55 * forward, forward, 0.5 * (forward + reaction), reaction]


@job(data=["images", "initial_images", "forces"], output_schema=BarrierDoc)
def emit(model: str, potential: str, site: int, path: str, forward: float, reaction: float,
         converged: bool = True, hop_kind: str = "subsurface") -> BarrierDoc:
    """A Ni (and a far N) in a 10 Å box; the Ni moves 2 Å along x over the band."""
    images = [Structure(Lattice.cubic(10.0), ["Ni", "N"], [[2.0 + 0.5 * i, 5.0, 5.0], [5.0, 7.5, 5.0]],
                        coords_are_cartesian=True) for i in range(N_IMAGES)]
    ni_n = [float(np.linalg.norm(s[0].coords - s[1].coords)) for s in images] if model == "cpan" else None
    return BarrierDoc(
        model=model, engine="mlip", potential=potential, site=site, path=path,
        hop_kind="bulk" if model == "bulk" else hop_kind, path_method=f"idpp, {path}",
        converged=converged, reason=None if converged else "fmax not reached in 200 steps",
        images=images, energies=energies(forward, reaction), forces=[[[0.0] * 3] * 2] * N_IMAGES,
        forward_barrier=forward, reverse_barrier=forward - reaction, reaction_energy=reaction,
        saddle_index=2, force_calls=30, wall_time=1.25, hop_depth=0.5, moved_index=0,
        n_index=1 if model == "cpan" else None, ni_n_distances=ni_n)


# (model, potential, site, path, forward, reaction, converged)
DOCS = [
    ("bulk", "chgnet", 0, "A", 2.0, 0.5, True),
    ("bare", "chgnet", 0, "A", 2.5, 0.4, True),
    ("bare", "chgnet", 0, "B", 2.2, 0.4, True),  # the lower saddle: selected
    ("bare", "chgnet", 1, "A", 2.4, 0.3, True),
    ("bare", "chgnet", 1, "B", 1.0, 0.3, False),  # lower but not converged: never selected
    ("bare", "chgnet", 2, "A", 2.6, 0.2, True),  # no cPAN site 2: unpaired
    ("cpan", "chgnet", 0, "A", 3.0, 1.0, True),
    ("cpan", "chgnet", 0, "B", 3.1, 1.0, True),
    ("cpan", "chgnet", 1, "A", 2.9, 0.6, True),
    ("cpan", "chgnet", 3, "A", 3.3, 0.9, True),  # no bare site 3: unpaired
    ("bare", "sevennet", 0, "A", 2.0, 0.1, True),
    ("cpan", "sevennet", 0, "A", 2.3, 0.2, True),
    ("bare", "sevennet", 1, "A", 2.1, 0.1, True),
    ("cpan", "sevennet", 1, "A", 2.6, 0.6, True),
]
# the selected cPAN − bare pairs: chgnet sites 0, 1; sevennet sites 0, 1
FORWARD = {"chgnet": [3.0 - 2.2, 2.9 - 2.4], "sevennet": [2.3 - 2.0, 2.6 - 2.1]}
REACTION = {"chgnet": [1.0 - 0.4, 0.6 - 0.3], "sevennet": [0.2 - 0.1, 0.6 - 0.1]}


def run(store: JobStore, docs, study: str) -> None:
    jobs = [emit(*d) for d in docs]
    flow = Flow(jobs)
    for j in jobs:
        j.metadata.update(study=study)
    run_locally(flow, store=store, ensure_success=True, log=False)


@pytest.fixture(scope="module")
def store():
    job_store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    job_store.connect()
    run(job_store, [("bulk", "chgnet", 0, "A", 9.9, 0.5, True)], "old")  # superseded below
    run(job_store, DOCS, "s1")
    return job_store


@pytest.fixture(scope="module")
def rows(store):
    return report.barrier_rows(load_barriers(store))


def sample_stats(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, std, std / math.sqrt(len(values))


def test_newest_per_neb_in_order_with_arrays(store):
    barriers = load_barriers(store)
    assert len(barriers) == len(DOCS)
    keys = [(b.doc.potential, b.doc.model, b.doc.site, b.doc.path) for b in barriers]
    assert keys[:3] == [("chgnet", "bulk", 0, "A"), ("chgnet", "bare", 0, "A"), ("chgnet", "bare", 0, "B")]
    assert keys[-1] == ("sevennet", "cpan", 1, "A")
    bulk = barriers[0]
    assert bulk.doc.forward_barrier == 2.0 and bulk.study == "s1"  # the 9.9 eV run is older
    assert len(bulk.doc.images) == N_IMAGES and len(bulk.doc.forces) == N_IMAGES
    assert profile(bulk.doc).forward_barrier == pytest.approx(2.0, abs=1e-9)
    assert len(load_barriers(store, study="old")) == 1
    assert len(load_barriers(store, potential="sevennet", model="cpan")) == 2
    assert barrier_query(potential="chgnet", study="s1") == {
        "output.@class": "BarrierDoc", "output.potential": "chgnet", "metadata.study": "s1"}


def test_lower_converged_path_is_selected(rows):
    chosen = {(r.potential, r.model, r.site): r.path for r in rows if r.selected}
    assert chosen[("chgnet", "bare", 0)] == "B"
    assert chosen[("chgnet", "bare", 1)] == "A"  # B is lower but did not converge
    assert chosen[("chgnet", "cpan", 0)] == "A"
    assert sum(r.selected for r in rows) == 11  # one per site


def test_distribution(rows):
    dist = {(d.potential, d.model): d for d in distributions(rows)}
    assert [(d.potential, d.model) for d in distributions(rows)] == [
        ("chgnet", "bulk"), ("chgnet", "bare"), ("chgnet", "cpan"), ("sevennet", "bare"),
        ("sevennet", "cpan")]
    bare = dist[("chgnet", "bare")]
    mean, std, _ = sample_stats([2.2, 2.4, 2.6])
    assert bare.n == 3 and bare.min == 2.2 and bare.max == 2.6 and bare.paper == 2.83
    assert bare.mean == pytest.approx(mean, abs=1e-9) and bare.std == pytest.approx(std, abs=1e-9)
    assert dist[("chgnet", "bulk")].n == 1 and dist[("chgnet", "bulk")].std is None
    assert dist[("chgnet", "cpan")].paper == 3.36


def test_paired_differences(rows):
    pairs = site_pairs(rows)
    assert [(p.potential, p.site) for p in pairs] == [("chgnet", 0), ("chgnet", 1), ("sevennet", 0),
                                                      ("sevennet", 1)]
    for quantity, expected in (("forward_barrier", FORWARD), ("reaction_energy", REACTION)):
        per = {d.potential: d for d in paired_differences(rows, quantity)}
        for potential, values in expected.items():
            mean, _, stderr = sample_stats(values)
            assert per[potential].n == 2
            assert per[potential].mean == pytest.approx(mean, abs=1e-9)
            assert per[potential].stderr == pytest.approx(stderr, abs=1e-9)
        pooled = pooled_difference(rows, quantity)
        everything = [v for values in expected.values() for v in values]
        mean, _, stderr = sample_stats(everything)
        means = [sum(v) / len(v) for v in expected.values()]
        assert pooled.n_pairs == 4 and pooled.n_potentials == 2
        assert pooled.mean == pytest.approx(mean, abs=1e-9)
        assert pooled.stderr == pytest.approx(stderr, abs=1e-9)
        assert pooled.mean_of_means == pytest.approx(sum(means) / 2, abs=1e-9)
        assert pooled.stderr_of_means == pytest.approx(sample_stats(means)[2], abs=1e-9)
    # forward = reverse + reaction, per pair and so on average
    rev = pooled_difference(rows, "reverse_barrier").mean
    pooled_reaction = sum(v for values in REACTION.values() for v in values) / 4  # 0.375
    assert rev == pytest.approx(0.525 - pooled_reaction, abs=1e-9)
    assert mean_stderr([]) == (None, None) and mean_stderr([1.5]) == (1.5, None)


def test_attribution_follows_the_numbers(rows):
    text = attribution(rows)
    # Δforward +0.525 = Δreaction +0.375 + Δreverse +0.150: the reaction energy is the larger part
    assert "4 bare/cPAN site pairs" in text and "+0.525" in text and "+0.375" in text and "+0.150" in text
    assert "the larger part is ΔE_reaction: the coating mainly destabilises the migrated state" in text
    assert "Per potential, ΔE_reaction is the larger part for 2 of 2." in text
    assert "No site" in attribution([r for r in rows if r.model != "cpan"])


def pair(cpan_forward: float, cpan_reaction: float) -> list[BarrierRow]:
    """One bare site (2.0 eV, ΔE 0.2 eV) and its cPAN partner."""
    return [BarrierRow(model=m, engine="vasp", forward_barrier=f, reverse_barrier=f - r, reaction_energy=r,
                       converged=True, selected=True, force_calls=1, wall_time=0.0, paper_barrier=None)
            for m, f, r in (("bare", 2.0, 0.2), ("cpan", cpan_forward, cpan_reaction))]


def test_attribution_saddle_or_both():
    saddle = attribution(pair(2.5, 0.2))  # Δreaction 0, Δreverse +0.5
    assert "the larger part is ΔE_reverse: the coating mainly raises the saddle" in saddle
    assert "one pair, so no error estimate" in saddle
    both = attribution(pair(2.5, 0.45))  # +0.25 each
    assert "the two parts are of similar size" in both and "both destabilises" in both


def test_report_files(store, tmp_path):
    files = write_report(store, tmp_path / "a")
    table = list(csv.DictReader(files["csv"].open()))
    assert list(table[0]) == list(report.COLUMNS)
    assert len(table) == len(DOCS) and len({r["uuid"] for r in table}) == len(DOCS)
    bare0 = [r for r in table if (r["potential"], r["model"], r["site"]) == ("chgnet", "bare", "0")]
    assert [(r["path"], r["forward_barrier"], r["selected"]) for r in bare0] == [
        ("A", "2.500", "False"), ("B", "2.200", "True")]
    failed = next(r for r in table if r["converged"] == "False")
    assert failed["forward_barrier"] == "" and failed["reason"].startswith("fmax")
    cpan = next(r for r in table if r["model"] == "cpan")
    assert cpan["ni_n_start"] == "3.905" and cpan["paper_barrier"] == "3.360"
    md = files["md"].read_text()
    assert "+0.53" in md and "+0.650 ± 0.150" in md and "+0.400 ± 0.100" in md
    assert "| all, pooled pairs | 4 | +0.525 ± 0.103 |" in md
    for key, name in (("distribution", "barrier_distribution.png"), ("profiles", "neb_profiles.png")):
        assert files[key] == tmp_path / "a" / name
        assert files[key].read_bytes()[:8] == PNG and files[key].stat().st_size > 10_000
    assert (tmp_path / "a" / "structures" / "cpan_sevennet_site1_end.cif").is_file()
    assert "Ni" in (tmp_path / "a" / "structures" / "bare_chgnet_site0_start.cif").read_text()
    assert len(list((tmp_path / "a" / "structures").glob("*.cif"))) == 2 * 11
    page = files["html"].read_text()
    assert page.count("data:image/png;base64,") == 2 and "paired site by site" in page

    again = write_report(store, tmp_path / "b")
    for key in ("csv", "md"):
        assert again[key].read_bytes() == files[key].read_bytes()


def test_empty_store_or_no_match_is_one_line(store, tmp_path):
    empty = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    empty.connect()
    with pytest.raises(ValueError, match="ncmflow study") as err:
        write_report(empty, tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="potential=mace"):
        write_report(store, tmp_path, potential="mace", model=None)


def test_analysis_imports_only_documents_from_workflows():
    for name in ("barriers.py", "statistics.py", "barrier_plots.py"):
        tree = ast.parse((ANALYSIS / name).read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        workflows = {m for m in modules if m and m.startswith("ncmflow.workflows")}
        assert workflows <= {"ncmflow.workflows.documents"}, name


def test_hop_kinds_are_never_pooled(tmp_path):
    """Site k of the in-plane hop is not site k of the subsurface one: a report refuses to mix
    them unless told which kind (bulk results belong to both)."""
    mixed = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    mixed.connect()
    run(mixed, [("bulk", "chgnet", 0, "A", 2.0, 0.5, True), ("bare", "chgnet", 0, "A", 2.2, 0.4, True),
                ("cpan", "chgnet", 0, "A", 3.0, 1.0, True)], "sub")
    flat = [emit("bare", "chgnet", 0, "A", 1.5, 0.2, True, "in-plane"),
            emit("cpan", "chgnet", 0, "A", 1.4, 0.1, True, "in-plane")]
    run_locally(Flow(flat), store=mixed, ensure_success=True, log=False)
    with pytest.raises(ValueError, match=r"several kinds \(in-plane, subsurface\)"):
        report.write_report(mixed, tmp_path / "mixed")
    files = report.write_report(mixed, tmp_path / "flat", hop="in-plane")
    rows = files["csv"].read_text().splitlines()[1:]
    assert [r.split(",")[:3] for r in rows] == [["bulk", "0", "bulk"], ["bare", "0", "in-plane"],
                                                 ["cpan", "0", "in-plane"]]
    assert [p.difference("forward_barrier") for p in site_pairs(report.barrier_rows(
        load_barriers(mixed, hop="in-plane")))] == [pytest.approx(1.4 - 1.5)]
