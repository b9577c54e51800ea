"""``cpkmon capability FILE``: an offline capability study of a CSV or JSONL export (SPEC §8).

Why it runs the streaming core instead of a batch formula: the study must give the same numbers, in the same
JSON fields, as the live status document — it is what a quality engineer runs on an export before trusting the
live values. The whole file is one window (``window_subgroups`` = number of rows, an upper bound of the
subgroups), the values go through :class:`~cpkmon.capability.characteristic.Characteristic` in file order and
the open subgroup is flushed at the end.

It is a **Phase I study**: the control limits come from the whole file (or, with ``--baseline-subgroups K``,
from its first K subgroups, the rest being judged as phase II) and every subgroup is tested against them with
the enabled run rules, so a shift in subgroup 5 is flagged like one in subgroup 23 and ``stable`` is false
when any rule fires. ``--exclude-flagged`` recomputes the limits without the flagged baseline subgroups
(revised limits). The capability numbers do not depend on the chart.

Input: a CSV with a header naming ``value`` and optionally ``subgroup`` (and ``ts``), or JSON Lines with
objects ``{"value": …, "subgroup": …, "ts": …}``. A **row** is a data record: the header and blank lines are
not rows, so row 41 is the 41st value of the file; a **line** is the physical line of the file where that
record starts (1-based, the header and blank lines counted). Values must be plain decimal or scientific
notation (``-1.5``, ``2e-3``): Python's ``float`` would also take ``1_000``, ``١٢`` or ``infinity``, which no
gauge export means. Any bad row stops the study with a message naming the row and line, exit status 2.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import cast

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


#: A number as exports write it: optional sign, ASCII digits with an optional point, optional exponent.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Words ``float`` reads as non-finite values: reported as "not finite" rather than "not a number".
_NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


def _parse_value(raw: object, where: str) -> float:
    if isinstance(raw, bool) or raw is None:
        raise BadFile(f"{where}: value {raw!r} is not a number")
    if isinstance(raw, int | float):
        x = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise BadFile(f"{where}: value is empty")
        if _NON_FINITE.fullmatch(text):
            raise BadFile(f"{where}: value {raw!r} is not finite")
        if not _NUMBER.fullmatch(text):
            raise BadFile(
                f"{where}: value {raw!r} is not a number (plain decimal or scientific notation expected)"
            )
        x = float(text)
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
    """Data rows of a CSV; see the module docstring for what "row" and "line" count."""
    # lines end at \n, \r\n or \r, as an editor counts them (str.splitlines would also split at \x0c,
    # \u2028, … and inside quoted fields)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise BadFile(f"{path}: the file is empty")
    names = [h.strip().lstrip("\ufeff").lower() for h in header]
    if "value" not in names:
        raise BadFile(
            f"{path}: line {reader.line_num} (the header): no 'value' column "
            f"(found {', '.join(header) or 'nothing'})"
        )
    iv = names.index("value")
    isg = names.index("subgroup") if "subgroup" in names else None
    its = names.index("ts") if "ts" in names else None
    row_no = 0
    start = reader.line_num + 1  # the line the next record starts on (a quoted field may span lines)
    for cells in reader:
        line_no, start = start, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        row_no += 1
        where = f"{path}: row {row_no} (line {line_no})"
        if len(cells) != len(header):
            raise BadFile(f"{where}: {len(cells)} fields, the header has {len(header)}")
        yield Row(
            _parse_value(cells[iv], where),
            None if isg is None else _parse_subgroup(cells[isg], where),
            0.0 if its is None else _parse_row_ts(cells[its], where),
        )


def _jsonl_rows(path: Path, text: str) -> Iterator[Row]:
    """Data rows of a JSON Lines file: one object a line, blank lines skipped (not rows)."""
    row_no = 0
    for line_no, line in enumerate(io.StringIO(text, newline=""), start=1):
        if not line.strip():
            continue
        row_no += 1
        where = f"{path}: row {row_no} (line {line_no})"
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
    baseline_subgroups: int | None = None,
    exclude_flagged: bool = False,
) -> Characteristic:
    """Run the rows through one Characteristic whose window holds the whole file: a Phase I study.

    The control limits come from the whole file (once it has ``min_subgroups`` subgroups, as live) and
    every subgroup is judged against them (:meth:`Characteristic.rebaseline` after the last row). With
    ``baseline_subgroups`` = K they come from the first K subgroups (Phase I over those, as soon as the K-th
    closes — if one row closes two subgroups, the second is in the baseline too), the later ones being
    judged as phase II; :class:`BadFile` if the file has fewer or they have no within-subgroup spread.
    """
    options = Options(
        window_subgroups=max(1, len(rows)),
        min_subgroups=min_subgroups,
        subgroup_size=spec.size(1),
        sigma_method="pooled" if sigma_method == "pooled" else "default",
        baseline_exclude_flagged=exclude_flagged,
    )
    ch = Characteristic("offline", name, spec, options)
    pending = baseline_subgroups
    for i, r in enumerate(rows, start=1):
        ch.add(r.value, r.ts, f"row-{i}", r.subgroup)
        if pending is not None and ch.seq >= pending:
            _freeze_baseline(ch, pending)
            pending = None
    ch.flush()
    if pending is not None:
        if ch.seq < pending:
            raise BadFile(f"--baseline-subgroups {pending}: the file has only {ch.seq} subgroups")
        _freeze_baseline(ch, pending)
    elif baseline_subgroups is None and ch.chart.frozen:
        ch.rebaseline()  # the live freeze used the first min_subgroups: re-judge with the whole file's limits
    return ch


def _freeze_baseline(ch: Characteristic, k: int) -> None:
    try:
        ch.rebaseline()
    except ValueError:
        raise BadFile(
            f"--baseline-subgroups {k}: no within-subgroup variation in the first {k} subgroups"
        ) from None


def _fmt(v: object) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _human(status: dict[str, object], path: Path, baseline: str) -> str:
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
            f"LCL {_fmt(control.get('lcl'))}, UCL {_fmt(control.get('ucl'))} "
            f"(limits from {baseline})"
        )
    violations = status.get("violations")
    if isinstance(violations, list) and violations:
        flagged = list(dict.fromkeys(str(cast(dict[str, object], v)["subgroup"]) for v in violations))
        lines.append(f"  run-rule violations: {len(violations)}, flagged subgroups: {', '.join(flagged)}")
        for v in violations[:10]:
            assert isinstance(v, dict)
            lines.append(
                f"    rule {v['rule']} on {v['chart']} chart at subgroup {v['subgroup']}: {_fmt(v['value'])}"
            )
        if len(violations) > 10:
            lines.append(f"    … {len(violations) - 10} more (--json lists them all)")
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
    baseline_subgroups: int | None = typer.Option(
        None,
        "--baseline-subgroups",
        min=1,
        help="control limits from the first K subgroups (default: the whole file); the rest is phase II",
    ),
    exclude_flagged: bool = typer.Option(
        False,
        "--exclude-flagged",
        help="recompute the limits without the baseline subgroups a run rule flagged (revised limits)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the status object as JSON"),
) -> None:
    """Offline process-capability study of a CSV/JSONL export, over the whole file as one window; a Phase I
    study of its control chart (limits from the whole file unless --baseline-subgroups)."""
    try:
        rows = read_rows(file)
        size = subgroup_size
        if size is None:
            size = 1 if all(r.subgroup is None for r in rows) else _modal_size(rows)
        try:
            spec = Spec(lsl=lsl, usl=usl, target=target, subgroup_size=size)
        except ValueError as exc:
            raise BadFile(f"bad specification: {exc}") from None
        ch = study(
            rows,
            spec,
            sigma_method.value,
            min_subgroups,
            name=file.stem,
            baseline_subgroups=baseline_subgroups,
            exclude_flagged=exclude_flagged,
        )
    except BadFile as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    status = ch.status()
    if as_json:
        typer.echo(json.dumps(status, allow_nan=False))
    else:
        k = baseline_subgroups
        baseline = "the whole file" if k is None else f"the first {k} subgroups"
        if exclude_flagged:
            baseline += " without its flagged subgroups"
        typer.echo(_human(status, file, baseline))
