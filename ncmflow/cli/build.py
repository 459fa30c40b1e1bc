"""`ncmflow build` (a model) and `ncmflow inputs write` (an engine's input folder)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ncmflow.cli.utils import EngineOption, NcmflowTyper, check_parent, console, out_option

app = NcmflowTyper()
inputs_app = NcmflowTyper(help="Write ready-to-run input folders for an engine.", no_args_is_help=True)
app.add_typer(inputs_app, name="inputs")


class Kind(StrEnum):
    linio2 = "linio2"
    li05nio2 = "li05nio2"
    ncm811 = "ncm811"
    slab = "slab"
    cpan = "cpan"
    interface = "interface"
    migration = "migration"


class Bulk(StrEnum):
    linio2 = "linio2"
    li05nio2 = "li05nio2"
    ncm811 = "ncm811"


@app.command()
def build(
    kind: Annotated[Kind, typer.Argument(help="Which model to build.")],
    out: Annotated[Path, out_option("File (.cif .vasp POSCAR .extxyz .json); for migration a folder.")],
    bulk: Annotated[Bulk, typer.Option(help="Bulk a slab/interface is cut from.")] = Bulk.li05nio2,
    facet: Annotated[str, typer.Option(help="Slab facet, hexagonal setting: 104 or 003.")] = "104",
    layers: Annotated[int, typer.Option(help="Slab thickness in (hkl) planes.")] = 4,
    vacuum: Annotated[float, typer.Option(help="Vacuum thickness (Å).")] = 15.0,
    fixed_layers: Annotated[int, typer.Option(help="Bottom planes held fixed.")] = 2,
    n_units: Annotated[
        int | None, typer.Option("--n-units", help="cPAN repeat units \\[default: 5; migration: 3].")
    ] = None,
    degree: Annotated[
        float | None,
        typer.Option(help="cPAN cyclization degree, 0…1 \\[default: 0.80 as cPAN-260; migration: 0.67]."),
    ] = None,
    n_kind: Annotated[str, typer.Option(help="N bound to Ni: pyridinic or nitrile.")] = "pyridinic",
    model: Annotated[str, typer.Option(help="Migration model: bulk, bare or cpan.")] = "bulk",
    hop: Annotated[
        str, typer.Option(help="Slab hop: subsurface (into the Li layer below) or in-plane.")
    ] = "subsurface",
    site: Annotated[int, typer.Option(help="Migration hop site (0, 1, …; see `ncmflow study --sites`).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for NCM811 ordering ties and cPAN embedding.")] = 0,
) -> None:
    """Build a model and print its summary.

    Example: `ncmflow build migration --model cpan -o hop_cpan/`,
    `ncmflow build slab --facet 003 -o slab.cif`
    """
    from ncmflow import structures as st
    from ncmflow.structures.files import write_structure
    from ncmflow.summary import summarize

    check_parent(out)
    if kind is Kind.migration:
        _build_migration(out, model, hop, site, seed, n_units, degree)
        return
    builders = {"linio2": st.linio2, "li05nio2": st.li05nio2, "ncm811": lambda: st.ncm811(seed)}
    if kind.value in builders:
        obj = builders[kind.value]()
    elif kind is Kind.cpan:
        obj = st.cpan(n_units or 5, 0.8 if degree is None else degree, seed)
    else:
        obj = st.slab(builders[bulk.value](), facet, layers, vacuum, fixed_layers)
        if kind is Kind.interface:
            obj = st.interface(
                obj, st.cpan(n_units or 5, 0.8 if degree is None else degree, seed), n_kind=n_kind
            )
    write_structure(obj, out)
    summarize(console, obj, kind.value, out)


def _build_migration(out: Path, model: str, hop: str, site: int, seed: int, n_units: int | None,
                     degree: float | None) -> None:
    """A hop's start and end points, written as OUT/start.EXT and OUT/end.EXT (EXT: OUT's suffix)."""
    from ncmflow import structures as st
    from ncmflow.structures.files import write_structure
    from ncmflow.summary import summarize

    ext = out.suffix or ".vasp"
    folder = out.with_suffix("") if out.suffix else out
    folder.mkdir(exist_ok=True)
    cpan_options = {"n_units": n_units or 3, "degree": 0.67 if degree is None else degree}
    start, end = st.ni_hop_endpoints(model, hop, site, seed=seed, **cpan_options)
    for name, s in (("start", start), ("end", end)):
        write_structure(s, folder / f"{name}{ext}")
    summarize(console, start, f"Ni hop ({model}, site {site}): start", folder / f"start{ext}")
    depth = start.properties.get("hop_depth")
    console.print(
        f"end point: {folder / ('end' + ext)} — Ni #{start.properties['moved_index']} moved "
        f"{start.properties['hop_distance']:.2f} Å"
        + (f", {depth:.2f} Å into the slab" if depth is not None else "")
        + f" ({start.properties['site_label']}; {st.hop_sites(model, hop)} sites)", highlight=False,
    )


@inputs_app.command("write")
def inputs_write(
    structures: Annotated[list[Path], typer.Argument(help="Structure file(s); NEB: start and end.")],
    engine: EngineOption = "vasp",
    job: Annotated[str, typer.Option(help="relax, static, neb or lobster.")] = "relax",
    out: Annotated[Path, out_option("Folder to write.")] = Path("inputs"),
    n_images: Annotated[int, typer.Option(help="NEB images between the end points.")] = 5,
    bulk: Annotated[
        bool | None, typer.Option("--bulk/--no-bulk", help="Force a cell relax (bulk) or fixed cell.")
    ] = None,
) -> None:
    """Write the paper's PBE+D3 inputs for one job.

    Example: `ncmflow inputs write --engine vasp --job neb hop/start.vasp hop/end.vasp -o neb_vasp`
    """
    from ncmflow.structures.files import read_structure
    from ncmflow.workflows.engines import write_inputs

    models = [read_structure(p) for p in structures]
    check_parent(out)
    written = write_inputs(engine, job, models, out, n_images=n_images, bulk=bulk)
    for path in written:
        console.print(f"wrote {path}")
    if any(p.name == "POTCAR.spec" for p in written):
        console.print("[yellow]no POTCARs configured (PMG_VASP_PSP_DIR): wrote POTCAR.spec instead[/]")
