"""One document model, four consumers: the exported JSON Schema, the dashboard's field names, the OpenAPI
schema and the API's parsing all come from ``cpkmon.alerts.model`` (no broker needed here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from cpkmon.alerts import model
from cpkmon.alerts.model import DASHBOARD_DOCUMENTS, export_schemas, fields_js
from cpkmon.api.app import create_app
from cpkmon.cli import app as cli
from cpkmon.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "docs" / "schema"
STATIC = REPO / "api" / "static"
REGENERATE = "run `cpkmon schema --fields-js api/static/fields.js` from the repository root"


def test_committed_schemas_are_what_the_model_exports() -> None:
    exported = export_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.schema.json")}
    assert set(committed) == set(exported), REGENERATE
    for name, text in exported.items():
        assert committed[name] == text, f"docs/schema/{name} is stale: {REGENERATE}"


def test_committed_fields_js_is_what_the_model_generates() -> None:
    committed = (STATIC / "fields.js").read_text(encoding="utf-8")
    assert committed == fields_js(), f"fields.js is stale: {REGENERATE}"


def test_cli_writes_the_schemas(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    js = tmp_path / "fields.js"
    result = CliRunner().invoke(cli, ["schema", "--out", str(out), "--fields-js", str(js)])
    assert result.exit_code == 0, result.output
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    assert written == export_schemas()
    assert js.read_text(encoding="utf-8") == fields_js()
    for text in written.values():  # every file is a 2020-12 schema with a description per property
        schema = json.loads(text)
        assert schema["$schema"] == model.SCHEMA_DIALECT


def _field_sets() -> dict[str, set[str]]:
    sets = {c: set(m.model_fields) for c, m in DASHBOARD_DOCUMENTS.items()}
    sets["ALERT"] = set(model.GradeAlertItem.model_fields) | set(model.OutOfControlAlertItem.model_fields)
    return sets


def test_every_field_name_app_js_reads_is_in_the_model() -> None:
    """``doc[STATUS.cpk]``: a field the page names that the model lacks (a rename, a typo) fails here instead
    of rendering "—" on the page."""
    app_js = (STATIC / "app.js").read_text(encoding="utf-8")
    imported = re.search(r"import \{([^}]*)\} from './fields\.js';", app_js)
    assert imported, "app.js must import its field names from fields.js"
    names = {n.strip() for n in imported.group(1).split(",") if n.strip()}
    sets = _field_sets()
    exported = set(re.findall(r"^export const (\w+) =", fields_js(), re.M))
    assert names <= exported
    uses = re.findall(r"\b(" + "|".join(sorted(sets)) + r")\.(\w+)", app_js)
    assert len(uses) > 150, "app.js reads its document fields through the generated constants"
    unknown = sorted({f"{c}.{f}" for c, f in uses if f not in sets[c]})
    assert not unknown, f"app.js names fields the model does not have: {unknown}"
    enums = {"ALERT_TYPES": model.ALERT_TYPES, "STATES": model.STATES, "REASONS": model.REASONS,
             "CAUSES": model.CHANGE_CAUSES, "DIRECTIONS": model.DIRECTIONS}
    for const, key in re.findall(r"\b(" + "|".join(enums) + r")\.([A-Z_]+)\b", app_js):
        assert key.lower() in enums[const], f"{const}.{key}"
    # the status documents' own string values are not spelled out in app.js any more
    for value in (*model.ALERT_TYPES, model.STATE_INSUFFICIENT):
        assert f"'{value}'" not in app_js, value


def test_openapi_describes_the_documents_with_the_model() -> None:
    spec = create_app(Settings()).openapi()
    schemas = spec["components"]["schemas"]
    for cls in (model.LineStatus, model.CharacteristicStatus, model.CapabilityHistogram, model.GradeChange,
                model.Criterion, model.LineRow, model.GradeAlertItem, model.OutOfControlAlertItem,
                model.AckRecord):
        described = schemas[cls.__name__]
        assert set(described["properties"]) == set(cls.model_fields), cls.__name__
        for name, prop in described["properties"].items():
            assert prop.get("description"), f"{cls.__name__}.{name} has no description"
    page = schemas["AlertPage"]["properties"]["items"]["items"]
    refs = {r["$ref"].rsplit("/", 1)[-1] for r in page["oneOf"]}
    assert refs == {"GradeAlertItem", "OutOfControlAlertItem"}
    assert set(page["discriminator"]["mapping"]) == set(model.ALERT_TYPES)
