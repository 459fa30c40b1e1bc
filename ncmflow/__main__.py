"""`python -m ncmflow` is the `ncmflow` command."""

from ncmflow.cli import app

app()
