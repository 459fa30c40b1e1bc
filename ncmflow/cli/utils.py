"""What every command shares: the consoles, the error rule and the option types.

The error rule (one place, applied by :class:`NcmflowGroup` to every command): an exception in
:data:`USER_ERRORS` is the user's — bad input, a missing file, a failed job — and is reported
as one line naming the file when there is one, exit code 2; anything else is a bug in ncmflow
and prints its full traceback, exit code 1. ``ncmflow --debug`` or ``NCMFLOW_DEBUG=1`` prints
the traceback of user errors too (exit codes unchanged).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

console = Console()
err = Console(stderr=True)
# click's exceptions as typer raises them (typer ≥ 0.20 vendors click as typer._click)
CLICK = sys.modules[typer.BadParameter.__module__]


class UserError(Exception):
    """Bad input found by a command itself (not by the library)."""


# The user's errors, by class path. A class is looked up only if its module is already
# imported (an exception of a module never imported was never raised), so classifying an
# error imports nothing: not jobflow for JobFailed, not pydantic for ValidationError.
USER_ERRORS: tuple[str, ...] = (
    "builtins.ValueError",  # bad values (pydantic's ValidationError is one too)
    "builtins.FileNotFoundError",
    "builtins.OSError",  # only about a named file (its ``filename`` set): see is_user_error
    f"{CLICK.__name__}.ClickException",  # usage errors: unknown option, bad value, missing argument
    "pydantic_core.ValidationError",  # a config or record file that does not validate
    "ncmflow.workflows.flowstate.JobFailed",  # a job raised (run_flow, either runner)
    f"{__name__}.UserError",
)


def _imported(paths: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    found = []
    for path in paths:
        module, _, name = path.rpartition(".")
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def is_user_error(exc: BaseException) -> bool:
    if not isinstance(exc, _imported(USER_ERRORS)):
        return False
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        return exc.filename is not None  # a connection reset or a full disk is not bad input
    return True


def error_message(exc: BaseException) -> str:
    """One line: what was wrong, naming the file when there is one."""
    if isinstance(exc, CLICK.ClickException):
        ctx = getattr(exc, "ctx", None)
        said = " ".join(line.strip() for line in exc.format_message().splitlines())
        return said + (f" (see '{ctx.command_path} --help')" if ctx else "")
    if isinstance(exc, OSError) and exc.filename is not None:
        names = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{exc.strerror or type(exc).__name__}: {names}"
    validation = _imported(("pydantic_core.ValidationError",))
    if validation and isinstance(exc, validation) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        return f"invalid {exc.title}: " + (f"{where}: " if where else "") + first["msg"]
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def report(exc: BaseException, debug: bool = False) -> NoReturn:
    """Report ``exc`` by the rule above and exit."""
    if isinstance(exc, BrokenPipeError):  # `ncmflow ... | head`: the reader left, nothing to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's recipe
        raise typer.Exit(0)
    user = is_user_error(exc)
    if debug or not user:
        traceback.print_exception(exc, file=sys.stderr)
    if not user:
        err.print(f"[bold red]internal error[/] ({type(exc).__name__}): the traceback above is an "
                  "ncmflow bug", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"[bold red]error:[/] {escape(error_message(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


# passed on to typer: exits, ^C, and the help that `ncmflow submit` (no arguments) shows by
# raising a usage error (click ≥ 8.2)
_NOT_ERRORS = (typer.Exit, typer.Abort,
               *(getattr(CLICK, n) for n in ("Exit", "Abort", "NoArgsIsHelpError") if hasattr(CLICK, n)))


class NcmflowGroup(TyperGroup):
    """The root command: every command's errors are reported here, by one rule."""

    def make_context(self, info_name: str | None, args: list[str], parent: typer.Context | None = None,
                     **extra: Any) -> typer.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NOT_ERRORS:
            raise
        except CLICK.ClickException as exc:  # a usage error before any command ran
            report(exc)

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _NOT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 — sorted into the user's errors and bugs
            report(exc, debug=bool(ctx.params.get("debug")))


def print_markdown(text: str) -> None:
    """A report's Markdown: rendered in a terminal; redirected, as written (rich would fit its
    tables to 80 columns and cut most cells to "…" in a log file)."""
    if console.is_terminal:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def check_parent(path: Path) -> None:
    """An output path's folder must exist (we create the last level, never a whole tree)."""
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist")


# In help texts: the engine registry's names, filled in when a help is shown (NcmflowCommand):
# the registry looks up plugins in the installed packages' metadata, ~30 ms every command would pay.
ENGINES = "{engines}"
POTENTIALS = "{potentials}"


class NcmflowCommand(TyperCommand):
    """A command whose help may name the registered engines (:data:`ENGINES`)."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        from ncmflow.workflows.engines import engine_names

        names = ", ".join(engine_names())
        for param in self.params:
            if isinstance(getattr(param, "help", None), str):
                param.help = param.help.replace(ENGINES, names)
                if POTENTIALS in param.help:  # imports pymatgen: only for commands that show it
                    from ncmflow.inputs.mlip import MODELS

                    param.help = param.help.replace(POTENTIALS, ", ".join(MODELS))
        super().format_help(ctx, formatter)


class NcmflowTyper(typer.Typer):
    """typer.Typer whose commands are :class:`NcmflowCommand` s."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", NcmflowCommand)
        return super().command(*args, **kwargs)


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store: a folder (embedded montydb) or a jobflow store/config .yaml; default: your jobflow "
        "config (JOBFLOW_CONFIG_FILE, else ~/.jobflow.yaml), else ./ncmflow_data.",
    ),
]
EngineOption = Annotated[str, typer.Option(help=f"Engine: {ENGINES}.")]
EngineFilterOption = Annotated[str | None, typer.Option("--engine", help=f"Only this engine ({ENGINES}).")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="ncmflow config (workers); default ./ncmflow.yaml, ~/.config/ncmflow/config.yaml."
    ),
]
HopOption = Annotated[str, typer.Option(help="Slab hop kind: subsurface (the Ni goes into the Li layer "
                                        "below the surface plane) or in-plane.")]
SitesOption = Annotated[
    int | None, typer.Option(
        help="Hop sites per model \\[default: 2 with --quick (1 with --quick --dft-check), else 4].")
]
MlModelsOption = Annotated[str | None, typer.Option(
    "--ml-models", help=f"Comma-separated offline ML potentials for the mlip engine: {POTENTIALS} "
    "\\[default: chgnet; chgnet,sevennet with --quick --dft-check].")]
ModelsOption = Annotated[str | None, typer.Option(
    help="Comma-separated migration models \\[default: bulk,bare,cpan; bare,cpan with --quick --dft-check].")]
DftCheckOption = Annotated[bool, typer.Option(
    "--dft-check", help="GPAW single points on every NEB's end points and saddle (DFT//ML): which potential "
    "to believe. With --quick on the reduced models (2-layer slab, 2-unit cPAN, LCAO at Γ).")]
DftModeOption = Annotated[str | None, typer.Option(
    "--dft-mode", help="pw (the paper's 520 eV) or lcao (dzp) \\[default: lcao with --quick, else pw].")]
LayersOption = Annotated[int | None, typer.Option(
    help="(104) planes of the slab models \\[default: 4; 2 with --quick --dft-check].")]
CpanUnitsOption = Annotated[int | None, typer.Option(
    help="Units of the cPAN oligomer \\[default: 3; 2 with --quick --dft-check].")]


def out_option(text: str) -> Any:
    """`-o/--out`: every output file or folder, on every command."""
    return typer.Option("-o", "--out", help=text)
