"""The ncmflow command line: thin wrappers over the library, heavy imports inside commands.

One module per group of commands — ``build`` (build, inputs), ``study``, ``store`` (query,
show), ``analyze`` (compare, analyze …), ``hpc`` (submit, status, retry, cancel, collect,
run-jobs) — and ``utils``: the consoles, the option types every command shares (one name per
meaning: ``-o/--out`` for every output, ``--store``, ``--study`` for a study key) and the
error rule (bad input: one line, exit code 2; a bug: the traceback, exit code 1; ``--debug``
or ``NCMFLOW_DEBUG=1``: tracebacks always).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ncmflow.cli import analyze, build, hpc, store, study
from ncmflow.cli.utils import NcmflowGroup, NcmflowTyper, console
from ncmflow.deferred import defer_typer_help_imports

defer_typer_help_imports()  # help is rich markup (brackets escaped), not markdown: see ncmflow.deferred
app = NcmflowTyper(
    cls=NcmflowGroup,
    help="Build, run and analyse the cPAN@NCM811 Ni-migration study.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
for commands in (build, study, store, analyze, hpc):
    app.add_typer(commands.app)

__all__ = ["app"]


def _print_version(value: bool) -> None:
    if value:
        from ncmflow import __version__

        console.print(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", envvar="NCMFLOW_DEBUG",
        help="Print the full traceback of every error, bad input too (exit codes stay 2 and 1).",
    )] = False,
) -> None:
    """Build, run and analyse the cPAN@NCM811 Ni-migration study."""
    _limit_blas_threads()


def _limit_blas_threads() -> None:
    """BLAS threads = cores idle at the start, set before numpy/GPAW load OpenBLAS.

    OpenBLAS threads spin-wait: with the cores already busy, GPAW's LCAO SCF cycle of the
    60-atom electronic model took 140 s instead of 17 s with one thread. The user's own
    OMP_NUM_THREADS / OPENBLAS_NUM_THREADS win.
    """
    from ncmflow.workflows.cores import idle_cores

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(idle_cores()))
