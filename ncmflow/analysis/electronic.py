"""The electronic report of cPAN@slab: PDOS, Ni–N against Ni–O COHP, and Δρ, from the store.

Reads the three LCAO single points of the electronic study (interface, slab, cPAN) and turns
them into numbers — Ni-d band centre and its shift, the Ni-d/N-p overlap near E_F, −ICOHP at
E_F of the Ni–N bond beside a Ni–O bond of the same Ni, the charge moved by the bond — and
the plots a paper shows. Densities are read from the jobs' ``density.cube`` files.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import JobStore

from ncmflow.analysis.cdd import DensityGrid, charge_density_difference
from ncmflow.analysis.cohp import CohpResult, plot_cohp
from ncmflow.analysis.pdos import PdosData, band_centre, pdos_overlap, plot_pdos

PARTS = ("interface", "slab", "cpan")
# the Ni 3d manifold (eV vs E_F): an LCAO run with nbands = nao also has d-projected states
# 10-30 eV up (basis artefacts) that would dominate a first moment taken over all bands
D_WINDOW = (-10.0, 5.0)


@dataclass
class ElectronicRun:
    """The three single points of one electronic study, as the store holds them."""

    study: str
    completed_at: str
    ni: int
    n: int
    o: int
    parts: dict[str, dict[str, Any]]  # part -> job output (energy, efermi, pdos, cohp, cube)


def load_electronic(store: JobStore, study: str | None = None) -> ElectronicRun:
    """The newest complete electronic study in the store (or the one keyed ``study``)."""
    query: dict[str, Any] = {"metadata.stage": "lcao"}
    if study:
        query["metadata.study"] = study
    runs: dict[str, dict[str, dict]] = {}
    for doc in store.query(query, properties=["uuid", "completed_at", "metadata"]):
        runs.setdefault(doc["metadata"]["study"], {})[doc["metadata"]["part"]] = doc
    complete = {k: v for k, v in runs.items() if set(v) == set(PARTS)}
    if not complete:
        raise ValueError("the store holds no complete electronic study: "
                         "run `ncmflow study --engine gpaw --electronic` first")
    key = max(complete, key=lambda k: max(d["completed_at"] for d in complete[k].values()))
    docs = complete[key]
    meta = docs["interface"]["metadata"]
    parts = {p: store.query_one({"uuid": docs[p]["uuid"]}, load=True)["output"] for p in PARTS}
    return ElectronicRun(key, max(d["completed_at"] for d in docs.values()),
                         meta["ni_index"], meta["n_index"], meta["o_index"], parts)


def pdos_from_output(output: dict[str, Any]) -> PdosData:
    """The PDOS a GPAW electronic job stored (energies already E − E_F)."""
    d = output["pdos"]

    def arrays(channels: dict) -> dict[str, np.ndarray]:
        return {s: np.asarray(g, dtype=float) for s, g in channels.items()}

    return PdosData(np.asarray(d["energies"], dtype=float), float(d["efermi"]),
                    {label: arrays(c) for label, c in d["projections"].items()}, arrays(d["total"]))


def cohp_from_output(output: dict[str, Any], bond: str) -> CohpResult:
    """One stored LCAO pair COHP as a :class:`CohpResult`, so LOBSTER and GPAW plot alike."""
    if bond not in output["cohp"]:
        raise ValueError(f"no COHP for {bond} in this result (has: {', '.join(output['cohp'])})")
    d = output["cohp"][bond]
    spins = [s for s in ("up", "down") if s in d]
    return CohpResult(
        energies=np.asarray(d[spins[0]]["energies"], dtype=float), labels=[bond],
        atoms=[tuple(bond.split("-"))], lengths=np.array([d["length"]]),
        minus_cohp={s: np.array([d[s]["minus_cohp"]], dtype=float) for s in spins},
        minus_icohp_at_ef={s: np.array([-d[s]["icohp"]]) for s in spins},
    )


def electronic_summary(run: ElectronicRun) -> dict[str, Any]:
    """The numbers: band centres, PDOS overlaps, −ICOHP(E_F) per bond and spin, energies."""
    ni, n, o = run.ni, run.n, run.o
    pdos = pdos_from_output(run.parts["interface"])
    slab = pdos_from_output(run.parts["slab"])
    bonds = {}
    for bond in run.parts["interface"]["cohp"]:
        res = cohp_from_output(run.parts["interface"], bond)
        per_spin = {s: float(v[0]) for s, v in res.minus_icohp_at_ef.items()}
        bonds[bond] = {"length": float(res.lengths[0]), "minus_icohp": per_spin,
                       "minus_icohp_total": sum(per_spin.values())}
    for bond in run.parts["slab"]["cohp"]:
        res = cohp_from_output(run.parts["slab"], bond)
        alone = sum(v[0] for v in res.minus_icohp_at_ef.values())
        bonds[bond]["minus_icohp_total_without_cpan"] = float(alone)
    centre = band_centre(pdos, f"Ni{ni}-d", D_WINDOW)
    centre_slab = band_centre(slab, f"Ni{ni}-d", D_WINDOW)
    return {
        "study": run.study, "ni_index": ni, "n_index": n, "o_index": o,
        "energies_eV": {p: run.parts[p]["energy"] for p in PARTS},
        # LCAO PBE without D3 and without counterpoise: a sign and size, not a binding energy to quote
        "binding_energy_eV": run.parts["interface"]["energy"] - run.parts["slab"]["energy"]
        - run.parts["cpan"]["energy"],
        "magnetic_moment": {p: run.parts[p].get("magmom") for p in PARTS},
        "ni_d_band_centre": centre, "ni_d_band_centre_without_cpan": centre_slab,
        "ni_d_band_centre_shift": centre - centre_slab,
        "overlap_ni_d_n_p": pdos_overlap(pdos, f"Ni{ni}-d", f"N{n}-p"),
        "overlap_ni_d_o_p": pdos_overlap(pdos, f"Ni{ni}-d", f"O{o}-p"),
        "bonds": bonds,
    }


def write_electronic_report(run: ElectronicRun, out: Path) -> dict[str, Path]:
    """PDOS, COHP and Δρ plots, ``summary.json``, ``electronic.md`` and ``index.html`` in ``out``."""
    # everything read first (a broken cube file is one error, and no half report is left behind)
    summary = electronic_summary(run)
    ni, n, o = run.ni, run.n, run.o
    pdos = pdos_from_output(run.parts["interface"])
    cohps = {f"{name} ({bond})": cohp_from_output(run.parts["interface"], bond)
             for name, bond in zip(("Ni–N", "Ni–O"), run.parts["interface"]["cohp"], strict=True)}
    grids = {p: DensityGrid.from_cube(run.parts[p]["density_cube"]) for p in PARTS}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"pdos": plot_pdos(pdos, out / "pdos.png", labels=[f"Ni{ni}-d", f"N{n}-p", f"O{o}-p"])}
    files["cohp"] = plot_cohp(cohps, out / "cohp.png")
    cdd = charge_density_difference(grids["interface"], grids["slab"], grids["cpan"], ni, n, out)
    files |= cdd.pop("files")
    cdd.pop("plane_average")
    summary["charge_density_difference"] = cdd
    files["json"] = out / "summary.json"
    files["json"].write_text(json.dumps(summary, indent=2) + "\n")
    markdown = summary_markdown(summary)
    files["md"] = out / "electronic.md"
    files["md"].write_text(markdown)
    files["html"] = out / "index.html"
    files["html"].write_text(_html(markdown, [files[k] for k in ("pdos", "cohp", "slice", "plane_average")]))
    return files


def summary_markdown(s: dict[str, Any]) -> str:
    cdd = s["charge_density_difference"]
    lines = ["# Ni–N bond of cPAN@Li0.5NiO2(104): electronic structure (GPAW LCAO, PBE)", "",
             "| bond | length (Å) | −ICOHP(E_F) up | down | total (eV) | same Ni, no cPAN |",
             "|---|---|---|---|---|---|"]
    for bond, b in s["bonds"].items():
        up, down = b["minus_icohp"].get("up"), b["minus_icohp"].get("down", 0.0)
        ref = b.get("minus_icohp_total_without_cpan")
        lines.append(f"| {bond} | {b['length']:.3f} | {up:.3f} | {down:.3f} | {b['minus_icohp_total']:.3f} | "
                     + ("—" if ref is None else f"{ref:.3f}") + " |")
    ni, n, o = s["ni_index"], s["n_index"], s["o_index"]
    charges = ", ".join(f"{k} {v:+.3f} e" for k, v in cdd["sphere_charges"].items())
    lines += [
        "",
        f"- Ni{ni}-d band centre (E_F − 10 … E_F + 5 eV): {s['ni_d_band_centre']:.3f} eV vs E_F "
        f"({s['ni_d_band_centre_shift']:+.3f} eV from the slab without cPAN)",
        f"- E(cPAN@slab) − E(slab) − E(cPAN): {s['binding_energy_eV']:+.3f} eV (LCAO PBE, no D3, no "
        "counterpoise correction)",
        f"- PDOS overlap in [E_F − 2, E_F + 1] eV: Ni{ni}-d/N{n}-p {s['overlap_ni_d_n_p']:.3f}, "
        f"Ni{ni}-d/O{o}-p {s['overlap_ni_d_o_p']:.3f} (1 = identical shapes)",
        f"- Δρ in {cdd['sphere_radius']:.1f} Å spheres: {charges}; across the plane midway between "
        f"Ni and N, {cdd['transfer_to_slab']:+.3f} e moved to the slab side (∫Δρ = {cdd['total']:+.4f} e)",
        "",
    ]
    return "\n".join(lines)


def _html(markdown: str, images: list[Path]) -> str:
    pictures = "".join(f'<img alt="{p.stem}" src="data:image/png;base64,'
                       f'{base64.b64encode(p.read_bytes()).decode()}">' for p in images)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Ni–N electronic structure</title>"
            "<style>body{font-family:sans-serif;margin:2em}img{max-width:48%;margin:1em 1%}</style>"
            f"</head><body><pre>{html.escape(markdown)}</pre>{pictures}</body></html>\n")
