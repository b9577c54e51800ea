"""``cpkmon schema``: the JSON Schema of every document cpkmon reads or writes, for integrators.

The schemas are exported from the document model (:mod:`cpkmon.alerts.model`), the same classes the worker's
documents are tested against and the API describes in its OpenAPI, so what an integrator validates against is
what the worker writes. The repository commits the export under ``docs/schema/`` (a test checks it is
current); this command writes it anywhere, e.g. for a schema registry.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cpkmon.alerts.model import export_schemas, fields_js

#: Where the repository keeps the exported schemas (relative to the working directory: run from the
#: repository's root, ``cpkmon schema --fields-js api/static/fields.js`` regenerates both committed exports).
DEFAULT_OUT = Path("docs") / "schema"


def write_schemas(out: Path) -> list[Path]:
    """Write one ``<document>.schema.json`` per document into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in export_schemas().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def schema(
    out: Path = typer.Option(None, "--out", help="directory for the schemas (default: ./docs/schema)"),
    fields: Path = typer.Option(
        None, "--fields-js", help="also write the dashboard's field-name module (api/static/fields.js) here"
    ),
) -> None:
    """Write the JSON Schema (draft 2020-12) of every document: input events, spec, command, line status,
    alert, ack, dead letter and checkpoint records, one file each."""
    target = out if out is not None else DEFAULT_OUT
    for path in write_schemas(target):
        typer.echo(str(path))
    if fields is not None:
        fields.parent.mkdir(parents=True, exist_ok=True)
        fields.write_text(fields_js(), encoding="utf-8")
        typer.echo(str(fields))
