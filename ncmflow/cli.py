"""The ncmflow command line: thin wrappers over the library, heavy imports inside commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    help="Build, run and analyse the cPAN@NCM811 Ni-migration study.",
    no_args_is_help=True, rich_markup_mode="markdown", pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad input into a one-line error and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, ValueError, FileNotFoundError, KeyError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            err.print(f"[bold red]error:[/] {message}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Build, run and analyse the cPAN@NCM811 Ni-migration study."""
    if version:
        from ncmflow import __version__

        console.print(__version__)
        raise typer.Exit()


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
@friendly
def build(
    kind: Annotated[Kind, typer.Argument(help="Which model to build.")],
    output: Annotated[Path, typer.Option(
        "-o", "--output", help="File (.cif .vasp POSCAR .extxyz .json); for migration a folder.")],
    bulk: Annotated[Bulk, typer.Option(help="Bulk a slab/interface is cut from.")] = Bulk.li05nio2,
    facet: Annotated[str, typer.Option(help="Slab facet, hexagonal setting: 104 or 003.")] = "104",
    layers: Annotated[int, typer.Option(help="Slab thickness in (hkl) planes.")] = 4,
    vacuum: Annotated[float, typer.Option(help="Vacuum thickness (Å).")] = 15.0,
    fixed_layers: Annotated[int, typer.Option(help="Bottom planes held fixed.")] = 2,
    n_units: Annotated[int, typer.Option("--n-units", help="cPAN repeat units.")] = 5,
    degree: Annotated[float, typer.Option(help="cPAN cyclization degree, 0…1 (cPAN-260: 0.80).")] = 0.8,
    n_kind: Annotated[str, typer.Option(help="N bound to Ni: pyridinic or nitrile.")] = "pyridinic",
    model: Annotated[str, typer.Option(help="Migration model: bulk, bare or cpan.")] = "bulk",
    seed: Annotated[int, typer.Option(help="Seed for NCM811 ordering ties and cPAN embedding.")] = 0,
) -> None:
    """Build a model and print its summary.

    Example: `ncmflow build migration --model cpan -o hop_cpan/`,
    `ncmflow build slab --facet 003 -o slab.cif`
    """
    from ncmflow import structures as st
    from ncmflow.structures.files import write_structure
    from ncmflow.summary import summarize

    if kind is Kind.migration:
        ext = output.suffix or ".vasp"
        folder = output.with_suffix("") if output.suffix else output
        if not folder.parent.is_dir():
            raise UserError(f"output folder {folder.parent} does not exist")
        folder.mkdir(exist_ok=True)
        start, end = st.ni_hop_endpoints(model, n_units=min(n_units, 4) if model == "cpan" else 4,
                                         seed=seed)
        for name, s in (("start", start), ("end", end)):
            write_structure(s, folder / f"{name}{ext}")
        summarize(console, start, f"Ni hop ({model}): start", folder / f"start{ext}")
        console.print(f"end point: {folder / ('end' + ext)} — Ni #{start.properties['moved_index']} moved "
                      f"{start.properties['hop_distance']:.2f} Å")
        return
    builders = {"linio2": st.linio2, "li05nio2": st.li05nio2, "ncm811": lambda: st.ncm811(seed)}
    if kind.value in builders:
        obj = builders[kind.value]()
    elif kind is Kind.cpan:
        obj = st.cpan(n_units, degree, seed)
    else:
        obj = st.slab(builders[bulk.value](), facet, layers, vacuum, fixed_layers)
        if kind is Kind.interface:
            obj = st.interface(obj, st.cpan(n_units, degree, seed), n_kind=n_kind)
    write_structure(obj, output)
    summarize(console, obj, kind.value, output)


if __name__ == "__main__":
    app()
