"""`ncmflow compare` and `ncmflow analyze …`: reports from finished calculations (never runs one)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from ncmflow.cli.utils import (
    EngineFilterOption,
    NcmflowTyper,
    StoreOption,
    UserError,
    console,
    out_option,
    print_markdown,
)

app = NcmflowTyper()
analyze_app = NcmflowTyper(help="Analyse finished calculations (never runs one).", no_args_is_help=True)
app.add_typer(analyze_app, name="analyze")
OutOption = Annotated[Path, out_option("Output folder for plots and data.")]


def _write_json(path: Path, data: dict) -> None:
    import json

    path.write_text(json.dumps(data, indent=1, default=float))
    console.print(f"wrote {path}")


@app.command()
def compare(
    store: StoreOption = None,
    model: Annotated[str | None, typer.Option(help="Only this model (bulk, bare, cpan).")] = None,
    engine: EngineFilterOption = None,
    potential: Annotated[
        str | None, typer.Option(help="Only this ML potential (chgnet, sevennet, …).")
    ] = None,
    hop: Annotated[str | None, typer.Option(help="Only slab hops of a kind (subsurface, in-plane).")] = None,
    study: Annotated[str | None, typer.Option(help="Only this study key (see `ncmflow query`).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Only results finished since (ISO date).")] = None,
    out: Annotated[Path, out_option("Report folder.")] = Path("report"),
) -> None:
    """Regenerate the barrier comparison (bare vs cPAN, per engine, beside the paper) from the store.

    Example: `ncmflow compare --engine mlip -o report_mlip`
    """
    from ncmflow.analysis.barriers import write_report
    from ncmflow.workflows.store import get_store

    files = write_report(get_store(store), out, model=model, engine=engine, potential=potential, study=study,
                         since=since, hop=hop)
    console.print(files["md"].read_text(), markup=False, highlight=False, soft_wrap=True)
    for path in files.values():
        console.print(f"wrote {path}")


@analyze_app.command("electronic")
def analyze_electronic(
    store: StoreOption = None,
    study: Annotated[str | None, typer.Option(help="Study key (default: the newest complete one).")] = None,
    out: OutOption = Path("report/electronic"),
) -> None:
    """The electronic report (PDOS, Ni–N/Ni–O COHP, Δρ) regenerated from the store.

    For results collected from a cluster (`ncmflow collect`); reads the density cubes where
    the jobs wrote them. Example: `ncmflow analyze electronic -o report/electronic`
    """
    from ncmflow.analysis.electronic import load_electronic, write_electronic_report
    from ncmflow.workflows.store import get_store

    files = write_electronic_report(load_electronic(get_store(store), study), out)
    print_markdown(files["md"].read_text())
    for path in files.values():
        console.print(f"wrote {path}")


@analyze_app.command("neb")
def analyze_neb(
    source: Annotated[str, typer.Argument(help="A VASP NEB folder (00…N+1 with OUTCARs) or a store uuid.")],
    store: StoreOption = None,
    out: OutOption = Path("analysis"),
) -> None:
    """Splined energy profile (tangential forces), barriers, saddle position.

    Example: `ncmflow analyze neb vasp_neb/` or `ncmflow analyze neb 3f2a… -o neb_bare`
    """
    from ncmflow.analysis.neb import plot_profiles, profile_from_vasp_neb

    if Path(source).is_dir():
        prof, label = profile_from_vasp_neb(source), Path(source).name
    else:
        from monty.json import MontyDecoder

        from ncmflow.analysis.barriers import profile
        from ncmflow.workflows.store import get_store

        doc = get_store(store).query_one({"uuid": source, "output.@class": "BarrierDoc"}, load=True)
        if doc is None:
            raise UserError(f"{source} is neither a folder nor the uuid of a stored NEB result")
        barrier = MontyDecoder().process_decoded(doc["output"])
        prof, label = profile(barrier), f"{barrier.model} ({barrier.engine})"
    out.mkdir(parents=True, exist_ok=True)
    console.print(
        f"{label}: forward {prof.forward_barrier:.3f} eV, reverse {prof.reverse_barrier:.3f} eV, "
        f"ΔE {prof.reaction_energy:.3f} eV, saddle at {prof.saddle_x:.2f} Å (image {prof.saddle_index})"
    )
    console.print(f"wrote {plot_profiles({label: prof}, out / 'neb_profile.png')}")
    _write_json(out / "neb_profile.json", prof.as_dict())


@analyze_app.command("pdos")
def analyze_pdos(
    vasprun: Annotated[Path, typer.Argument(help="vasprun.xml(.gz) with projections (LORBIT=11).")],
    labels: Annotated[
        str, typer.Option(help="Projections, e.g. Ni-d,N-p,O-p or Ni12-d for one site.")
    ] = "Ni-d,N-p,O-p",
    overlap: Annotated[
        str | None, typer.Option(help="Two labels whose overlap near E_F to report, e.g. Ni-d,N-p.")
    ] = None,
    centre: Annotated[
        str | None, typer.Option(help="Label whose band centre to report, e.g. Ni12-d.")
    ] = None,
    out: OutOption = Path("analysis"),
) -> None:
    """Element/orbital-projected DOS (spin up/down), d-band centre, PDOS overlap in [E_F−2, E_F+1] eV.

    Example: `ncmflow analyze pdos vasprun.xml --labels Ni-d,N-p --overlap Ni-d,N-p --centre Ni12-d`
    """
    from ncmflow.analysis.pdos import PdosData, band_centre, pdos_overlap, plot_pdos

    wanted = [x.strip() for x in labels.split(",") if x.strip()]
    pdos = PdosData.from_vasprun(vasprun, labels=wanted)
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"efermi": pdos.efermi}
    if centre:
        result["band_centre_eV"] = band_centre(pdos, centre)
        console.print(f"{centre} band centre: {result['band_centre_eV']:.3f} eV (relative to E_F)")
    if overlap:
        a, b = (x.strip() for x in overlap.split(","))
        result["overlap"] = pdos_overlap(pdos, a, b)
        console.print(f"{a}/{b} overlap in [E_F−2, E_F+1] eV: {result['overlap']:.3f}")
    console.print(f"wrote {plot_pdos(pdos, out / 'pdos.png', labels=wanted)}")
    _write_json(out / "pdos.json", {**result, **pdos.as_dict()})


@analyze_app.command("cohp")
def analyze_cohp(
    folder: Annotated[Path, typer.Argument(help="LOBSTER run folder (COHPCAR, ICOHPLIST, CONTCAR).")],
    pair: Annotated[str, typer.Option(help="Element pair, e.g. Ni,N.")] = "Ni,N",
    max_length: Annotated[float | None, typer.Option(help="Only bonds up to this length (Å).")] = None,
    out: OutOption = Path("analysis"),
) -> None:
    """−COHP(E) and −ICOHP at E_F of the chosen pair, spin-resolved; plot with bonding to the right.

    Example: `ncmflow analyze cohp lobster_run/ --pair Ni,N --max-length 2.3`
    """
    from ncmflow.analysis.cohp import plot_cohp, read_lobster_cohp

    elements = tuple(x.strip() for x in pair.split(","))
    if len(elements) != 2:
        raise UserError(f"--pair needs two elements like Ni,N (got {pair!r})")
    result = read_lobster_cohp(folder, pair=elements, max_length=max_length)
    out.mkdir(parents=True, exist_ok=True)
    for spin, values in result.minus_icohp_at_ef.items():
        for label, atoms, length, value in zip(
            result.labels, result.atoms, result.lengths, values, strict=True
        ):
            console.print(
                f"{'–'.join(atoms)} ({length:.3f} Å, bond {label}) spin {spin}: −ICOHP(E_F) = {value:.4f} eV"
            )
    console.print(f"wrote {plot_cohp({'–'.join(elements): result}, out / 'cohp.png')}")
    _write_json(out / "cohp.json", result.as_dict())


@analyze_app.command("cdd")
def analyze_cdd(
    combined: Annotated[Path, typer.Argument(help="Density of cPAN@slab (CHGCAR or .cube).")],
    slab_density: Annotated[Path, typer.Argument(help="Density of the slab alone, same grid.")],
    molecule_density: Annotated[Path, typer.Argument(help="Density of cPAN alone, same grid.")],
    ni: Annotated[int, typer.Option(help="Index of the Ni of the Ni–N bond.")],
    n: Annotated[int, typer.Option(help="Index of the N of the Ni–N bond.")],
    radius: Annotated[float, typer.Option(help="Sphere radius for the charge moved (Å).")] = 1.0,
    out: OutOption = Path("analysis"),
) -> None:
    """Δρ = ρ(cPAN@slab) − ρ(slab) − ρ(cPAN): a file for VESTA, a slice through Ni–N, Δρ(z), ΔQ(z).

    Example: `ncmflow analyze cdd CHGCAR_ab CHGCAR_slab CHGCAR_cpan --ni 60 --n 96`
    """
    from ncmflow.analysis.cdd import DensityGrid, charge_density_difference

    def load(path: Path) -> DensityGrid:
        return DensityGrid.from_cube(path) if path.suffix == ".cube" else DensityGrid.from_chgcar(path)

    result = charge_density_difference(load(combined), load(slab_density), load(molecule_density), ni, n,
                                       out, radius, suffix=".cube" if combined.suffix == ".cube" else ".vasp")
    for name, value in result["sphere_charges"].items():
        console.print(f"Δq in {radius:.1f} Å around {name}: {value:+.4f} e")
    console.print(f"across the plane midway between Ni and N: {result['transfer_to_slab']:+.4f} e "
                  "moved to the slab side")
    for path in result.pop("files").values():
        console.print(f"wrote {path}")
    average = result.pop("plane_average")
    _write_json(out / "cdd.json", result | {k: v.tolist() if hasattr(v, "tolist") else v
                                            for k, v in average.items()})
