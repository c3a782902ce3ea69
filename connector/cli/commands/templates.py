"""`ccm templates vars`: every variable and filter a message template may use, with its type and meaning
(from connector/words/variables.py, the one list the README's table is made from)."""

from __future__ import annotations

import typer

from connector.cli.app import app
from connector.cli.output import Format, FormatOpt, emit
from connector.words import variables

templates = typer.Typer(help="Message templates: what they may use.", no_args_is_help=True)
app.add_typer(templates, name="templates")


@templates.command("vars")
def template_vars(fmt: FormatOpt = Format.TABLE) -> None:
    """Every variable (with its type) and filter a reminder, statement or notice template may use."""
    emit(
        fmt, "template-vars", ("scope", "variable", "type", "description"), variables.rows(),
        title="template variables", labels={"scope": "in", "variable": "variable", "type": "type",
                                            "description": "description"},
    )  # fmt: skip
