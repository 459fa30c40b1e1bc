"""`ncmflow query` and `ncmflow show`: what the store holds.

`query` on the embedded store imports neither jobflow nor pymatgen (see analysis.records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from ncmflow.cli.utils import EngineFilterOption, NcmflowTyper, StoreOption, UserError, console

app = NcmflowTyper()


@app.command()
def query(
    kind: Annotated[str | None, typer.Option(help="relax, static, neb or electronic.")] = None,
    model: Annotated[str | None, typer.Option(help="bulk, bare or cpan.")] = None,
    engine: EngineFilterOption = None,
    since: Annotated[datetime | None, typer.Option(help="Finished since (ISO date).")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="Show the newest N (0: all) "
                                              "\\[default: 100 in the table, all with --json].")] = None,
    store: StoreOption = None,
) -> None:
    """List what the store holds, with uuids for `ncmflow show`.

    Example: `ncmflow query --kind neb --engine mlip` or `ncmflow query --json | jq .uuid`
    """
    import json

    from rich.table import Table

    from ncmflow.analysis.records import query_records

    records = query_records(store, kind=kind, model=model, engine=engine, since=since)
    # like `jf job list`: a table of 10^4 rows takes rich 7 s to lay out and nobody reads it
    shown = (0 if json_lines else 100) if limit is None else limit
    hidden = max(0, len(records) - shown) if shown else 0
    records = records[hidden:]
    if json_lines:
        for rec in records:
            typer.echo(json.dumps(rec, sort_keys=True))
        return
    table = Table(title="ncmflow store")
    table.add_column("uuid", no_wrap=True, min_width=36)
    for column in ("stage", "model", "site", "engine", "result", "finished"):
        table.add_column(column)
    for rec in records:
        table.add_row(
            rec["uuid"],
            " ".join(filter(None, (rec["stage"] or rec["kind"], rec["path"]))),
            rec["model"] or "",
            "" if rec["site"] is None else str(rec["site"]),
            " ".join(filter(None, (rec["engine"], rec["potential"]))),
            rec["result"],
            rec["completed_at"][:16].replace("T", " "),
        )
    # redirected to a file there is no width to fit: keep each row on one line
    (console if console.is_terminal else Console(width=160)).print(table)
    if hidden:
        console.print(f"the newest {shown} of {shown + hidden} records; --limit 0 shows all, "
                      "--kind/--model/--engine/--since narrow them")


@app.command()
def show(
    uuid: Annotated[str, typer.Argument(help="Job uuid (from `ncmflow query`).")],
    store: StoreOption = None,
) -> None:
    """Print one stored document as JSON (arrays from the data store included).

    Example: `ncmflow show 3f2a…`
    """
    import json

    from ncmflow.workflows.store import get_store

    doc = get_store(store).query_one({"uuid": uuid}, load=True)
    if doc is None:
        raise UserError(f"no document with uuid {uuid} in the store")
    doc.pop("_id", None)
    typer.echo(json.dumps(doc, indent=1, default=str))
