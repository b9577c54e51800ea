"""``cpkmon capability FILE``: an offline capability study of a CSV or JSONL export (SPEC §8).

Why it runs the streaming core instead of a batch formula: the study must give the same numbers, in the same
JSON fields, as the live status document — it is what a quality engineer runs on an export before trusting the
live values. The whole file is one window (``window_subgroups`` = number of rows, an upper bound of the
subgroups), the values go through :class:`~cpkmon.capability.characteristic.Characteristic` in file order and
the open subgroup is flushed at the end.

Input: a CSV with a header naming ``value`` and optionally ``subgroup`` (and ``ts``), or JSON Lines with
objects ``{"value": …, "subgroup": …, "ts": …}``. Any bad row stops the study with a message naming the row
and exit status 2.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import typer

from cpkmon.capability.characteristic import Characteristic
from cpkmon.capability.options import Options
from cpkmon.capability.spec import MAX_SUBGROUP_SIZE, Spec
from cpkmon.capability.timeutil import parse_ts

EXIT_BAD_INPUT = 2


class SigmaMethodChoice(StrEnum):
    default = "default"
    pooled = "pooled"


class BadFile(Exception):
    """A file the study cannot use; the message names the row."""


@dataclass(frozen=True, slots=True)
class Row:
    value: float
    subgroup: str | None
    ts: float


def _parse_value(raw: object, where: str) -> float:
    if isinstance(raw, bool) or raw is None:
        raise BadFile(f"{where}: value {raw!r} is not a number")
    if isinstance(raw, int | float):
        x = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise BadFile(f"{where}: value is empty")
        try:
            x = float(text)
        except ValueError:
            raise BadFile(f"{where}: value {raw!r} is not a number") from None
    else:
        raise BadFile(f"{where}: value {raw!r} is not a number")
    if not math.isfinite(x):
        raise BadFile(f"{where}: value {raw!r} is not finite")
    return x


def _parse_subgroup(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise BadFile(f"{where}: subgroup {raw!r} must be a string or an integer")
    text = str(raw).strip()
    if not text:
        raise BadFile(f"{where}: subgroup is empty")
    return text


def _parse_row_ts(raw: object, where: str) -> float:
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    try:
        return parse_ts(raw)
    except ValueError as exc:
        raise BadFile(f"{where}: {exc}") from None


def _csv_rows(path: Path, text: str) -> Iterator[Row]:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise BadFile(f"{path}: the file is empty")
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    if "value" not in names:
        raise BadFile(f"{path}: row 1 (header): no 'value' column (found {', '.join(header) or 'nothing'})")
    iv = names.index("value")
    isg = names.index("subgroup") if "subgroup" in names else None
    its = names.index("ts") if "ts" in names else None
    for line_no, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        where = f"{path}: row {line_no - 1} (line {line_no})"
        if len(cells) != len(header):
            raise BadFile(f"{where}: {len(cells)} fields, the header has {len(header)}")
        yield Row(
            _parse_value(cells[iv], where),
            None if isg is None else _parse_subgroup(cells[isg], where),
            0.0 if its is None else _parse_row_ts(cells[its], where),
        )


def _jsonl_rows(path: Path, text: str) -> Iterator[Row]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: row {line_no} (line {line_no})"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadFile(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise BadFile(f"{where}: expected a JSON object, got {type(obj).__name__}")
        if "value" not in obj:
            raise BadFile(f"{where}: no 'value'")
        yield Row(
            _parse_value(obj["value"], where),
            _parse_subgroup(obj.get("subgroup"), where),
            _parse_row_ts(obj.get("ts"), where),
        )


def read_rows(path: Path) -> list[Row]:
    """All rows of a CSV or JSONL file, validated; raises :class:`BadFile` naming the row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BadFile(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadFile(f"{path}: is a directory") from None
    except UnicodeDecodeError as exc:
        raise BadFile(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise BadFile(f"{path}: cannot read ({exc.strerror})") from None
    if "\x00" in text:
        raise BadFile(f"{path}: binary file (NUL byte), expected CSV or JSONL")
    stripped = text.lstrip()
    if not stripped:
        raise BadFile(f"{path}: the file is empty")
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or stripped.startswith("{")
    rows = list(_jsonl_rows(path, text) if jsonl else _csv_rows(path, text))
    if not rows:
        raise BadFile(f"{path}: no data rows")
    return rows


def _modal_size(rows: list[Row]) -> int:
    """The most common size of the runs of equal subgroup ids (capped at 25): the chart's nominal size."""
    counts: dict[int, int] = {}
    run = 0
    prev: str | None = None
    for r in rows:
        if run and r.subgroup == prev and run < MAX_SUBGROUP_SIZE:
            run += 1
            continue
        if run:
            counts[run] = counts.get(run, 0) + 1
        prev, run = r.subgroup, 1
    counts[run] = counts.get(run, 0) + 1
    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]


def study(
    rows: list[Row],
    spec: Spec,
    sigma_method: str = "default",
    min_subgroups: int = 20,
    name: str = "value",
) -> Characteristic:
    """Run the rows through one Characteristic whose window holds the whole file."""
    options = Options(
        window_subgroups=max(1, len(rows)),
        min_subgroups=min_subgroups,
        subgroup_size=spec.size(1),
        sigma_method="pooled" if sigma_method == "pooled" else "default",
    )
    ch = Characteristic("offline", name, spec, options)
    for i, r in enumerate(rows, start=1):
        ch.add(r.value, r.ts, f"row-{i}", r.subgroup)
    ch.flush()
    return ch


def _fmt(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _human(status: dict[str, object], path: Path) -> str:
    lines = [f"capability study of {path}", ""]
    keys = [
        "n",
        "subgroups",
        "subgroup_size",
        "mean",
        "sigma_within",
        "sigma_estimator",
        "sigma_overall",
        "lsl",
        "usl",
        "target",
        "cp",
        "cpu",
        "cpl",
        "cpk",
        "cpk_ci",
        "pp",
        "ppu",
        "ppl",
        "ppk",
        "cpm",
        "state",
        "stable",
    ]
    width = max(len(k) for k in keys)
    for k in keys:
        label = "cpk 95% CI" if k == "cpk_ci" else k
        lines.append(f"  {label:<{width + 3}} {_fmt(status.get(k))}")
    control = status.get("control")
    if isinstance(control, dict):
        lines.append("")
        lines.append(
            f"  control chart {control.get('chart')}: center {_fmt(control.get('center'))}, "
            f"LCL {_fmt(control.get('lcl'))}, UCL {_fmt(control.get('ucl'))} ({control.get('source')})"
        )
    violations = status.get("violations")
    if isinstance(violations, list) and violations:
        lines.append(f"  run-rule violations in the window: {len(violations)}")
        for v in violations[:10]:
            assert isinstance(v, dict)
            lines.append(
                f"    rule {v['rule']} on {v['chart']} chart at subgroup {v['subgroup']}: {_fmt(v['value'])}"
            )
    if status.get("state") != "ok":
        lines.append("")
        lines.append(
            "  insufficient data: fewer closed subgroups than --min-subgroups, or no within-subgroup spread"
        )
    return "\n".join(lines)


def capability(
    file: Path = typer.Argument(
        ..., help="CSV (header with 'value', optional 'subgroup', 'ts') or JSONL file"
    ),
    lsl: float | None = typer.Option(None, "--lsl", help="lower specification limit"),
    usl: float | None = typer.Option(None, "--usl", help="upper specification limit"),
    target: float | None = typer.Option(None, "--target", help="target (enables Cpm)"),
    subgroup_size: int | None = typer.Option(
        None, "--subgroup-size", help="values per subgroup when the file has no 'subgroup' column (default 1)"
    ),
    sigma_method: SigmaMethodChoice = typer.Option(
        SigmaMethodChoice.default,
        "--sigma-method",
        help="σ_within: default (ranges / moving range) or pooled",
    ),
    min_subgroups: int = typer.Option(
        20, "--min-subgroups", min=1, help="subgroups needed to report capability"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the status object as JSON"),
) -> None:
    """Offline process-capability study of a CSV/JSONL export, over the whole file as one window."""
    try:
        rows = read_rows(file)
        size = subgroup_size
        if size is None:
            size = 1 if all(r.subgroup is None for r in rows) else _modal_size(rows)
        try:
            spec = Spec(lsl=lsl, usl=usl, target=target, subgroup_size=size)
        except ValueError as exc:
            raise BadFile(f"bad specification: {exc}") from None
        ch = study(rows, spec, sigma_method.value, min_subgroups, name=file.stem)
    except BadFile as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    status = ch.status()
    if as_json:
        typer.echo(json.dumps(status, allow_nan=False))
    else:
        typer.echo(_human(status, file))
