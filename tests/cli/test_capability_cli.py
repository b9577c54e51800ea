"""``cpkmon capability FILE``: reference cases through the CLI, the JSON object, human output, bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cpkmon.cli import app

CASES = sorted(
    json.loads((Path(__file__).resolve().parents[3] / "shared" / "data" / "expected.json").read_text())
)
runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, ["capability", *args])


@pytest.mark.parametrize("name", CASES)
def test_reference_case_via_cli(
    name: str, shared_data: Path, expected_cases: dict[str, Any], check_reference: Any, case_cli_args: Any
) -> None:
    case = expected_cases[name]
    result = run(str(shared_data / case["data_file"]), *case_cli_args(case), "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["state"] == "ok"
    check_reference(status, case["expected_exact_constants"])


def test_jsonl_gives_the_same_object(
    tmp_path: Path, shared_data: Path, expected_cases: dict[str, Any], case_cli_args: Any
) -> None:
    case = expected_cases["syn_unequal_sizes"]
    src = shared_data / case["data_file"]
    lines = src.read_text().splitlines()[1:]
    jl = tmp_path / "export.jsonl"
    jl.write_text(
        "\n".join(json.dumps({"subgroup": s, "value": float(v)}) for s, v in (ln.split(",") for ln in lines))
        + "\n"
    )
    a = json.loads(run(str(src), *case_cli_args(case), "--json").stdout)
    b = json.loads(run(str(jl), *case_cli_args(case), "--json").stdout)
    a.pop("characteristic")
    b.pop("characteristic")
    assert a == b


def test_subprocess_entry_point(
    shared_data: Path, expected_cases: dict[str, Any], check_reference: Any, case_cli_args: Any
) -> None:
    case = expected_cases["sas_partgaps"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpkmon.cli",
            "capability",
            str(shared_data / case["data_file"]),
            *case_cli_args(case),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    check_reference(json.loads(proc.stdout), case["expected_exact_constants"])


def test_human_output_and_defaults(tmp_path: Path) -> None:
    f = tmp_path / "plain.csv"
    f.write_text("value\n" + "\n".join(str(10 + 0.01 * ((i * 7) % 11)) for i in range(40)) + "\n")
    result = run(str(f), "--lsl", "9.8", "--usl", "10.3")
    assert result.exit_code == 0, result.output
    assert "cpk" in result.stdout and "moving_range" in result.stdout  # no subgroup column → individuals
    js = json.loads(run(str(f), "--lsl", "9.8", "--usl", "10.3", "--json").stdout)
    assert js["subgroup_size"] == 1 and js["subgroups"] == 40
    js5 = json.loads(
        run(
            str(f), "--lsl", "9.8", "--usl", "10.3", "--subgroup-size", "5", "--json", "--min-subgroups", "8"
        ).stdout
    )
    assert js5["subgroups"] == 8 and js5["state"] == "ok" and js5["sigma_estimator"] == "mvlue_r"
    few = json.loads(run(str(f), "--lsl", "9.8", "--usl", "10.3", "--subgroup-size", "5", "--json").stdout)
    assert few["state"] == "insufficient_data" and few["cpk"] is None


def test_bundled_example_runs() -> None:
    examples = Path(__file__).resolve().parents[2] / "cpkmon" / "examples"
    csvs = sorted(examples.glob("*.csv"))
    assert csvs, "the README quickstart example is missing"
    result = run(str(csvs[0]), "--lsl", "73.95", "--usl", "74.05", "--target", "74.0", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "ok"


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        ("subgroup,x\n1,2.0\n", ".csv", "line 1 (the header): no 'value' column"),
        ("value\n1.0\nabc\n", ".csv", "row 2 (line 3): value 'abc' is not a number"),
        ("value\n1.0\n2.0\nnan\n", ".csv", "row 3 (line 4): value 'nan' is not finite"),
        ("value\ninf\n", ".csv", "row 1 (line 2): value 'inf' is not finite"),
        ("value,subgroup\n1.0,a\n,a\n", ".csv", "row 2 (line 3): value is empty"),
        ("subgroup,value\n1,2.0\n,3.0\n", ".csv", "row 2 (line 3): subgroup is empty"),
        ("value,subgroup\n1.0\n", ".csv", "row 1 (line 2): 1 fields, the header has 2"),
        ("", ".csv", "empty"),
        ("value\n", ".csv", "no data rows"),
        ('{"value": 1.0}\n{"value": "x"}\n', ".jsonl", "row 2 (line 2): value 'x' is not a number"),
        ('{"value": 1.0}\n{"value": NaN}\n', ".jsonl", "row 2 (line 2)"),
        ('{"value": 1.0}\n{"valu": 2}\n', ".jsonl", "row 2 (line 2): no 'value'"),
        ('{"value": 1.0}\n[1]\n', ".jsonl", "row 2 (line 2): expected a JSON object"),
        ('{"value": 1.0}\n{"value": 1e999}\n', ".jsonl", "row 2 (line 2): value"),
        ('{"value": true}\n', ".jsonl", "row 1 (line 1): value True is not a number"),
    ],
)
def test_bad_files_exit_2_naming_the_row(tmp_path: Path, content: str, suffix: str, needle: str) -> None:
    f = tmp_path / f"bad{suffix}"
    f.write_text(content)
    result = run(str(f), "--lsl", "0", "--usl", "10")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr, result.stderr
    assert result.stdout == ""


def test_unreadable_and_binary_files(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.csv"), "--usl", "1")
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    d = tmp_path / "dir.csv"
    d.mkdir()
    assert run(str(d), "--usl", "1").exit_code == 2
    b = tmp_path / "bin.csv"
    b.write_bytes(b"value\n\xff\xfe\x00\x01")
    res = run(str(b), "--usl", "1")
    assert res.exit_code == 2 and "error:" in res.stderr


def test_bad_spec_and_options(tmp_path: Path) -> None:
    f = tmp_path / "ok.csv"
    f.write_text("value\n1\n2\n3\n")
    res = run(str(f), "--lsl", "5", "--usl", "1")
    assert res.exit_code == 2 and "lsl (5.0) must be less than usl (1.0)" in res.stderr
    res = run(str(f))
    assert res.exit_code == 2 and "at least one of lsl and usl" in res.stderr
    assert run(str(f), "--usl", "9", "--sigma-method", "bogus").exit_code == 2
    assert run(str(f), "--usl", "9", "--subgroup-size", "26").exit_code == 2


@pytest.mark.skipif(shutil.which("cpkmon") is None, reason="console script not installed")
def test_console_script_exit_code(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text("value\noops\n")
    proc = subprocess.run(
        ["cpkmon", "capability", str(f), "--usl", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "row 1 (line 2)" in proc.stderr


# ---------------------------------------------------------------------------------------------- Phase I study
def _piston_file(tmp_path: Path, shift_at: int | None, *, name: str = "rings.csv", seed: int = 11) -> Path:
    """25 subgroups of 5 from N(74.0, 0.01) to gauge resolution 0.001; +0.05 on every value of one."""
    import random

    rng = random.Random(seed)
    lines = ["subgroup,value"]
    for sg in range(1, 26):
        add = 0.05 if sg == shift_at else 0.0
        lines += [f"{sg},{round(rng.gauss(74.0, 0.01) + add, 3)}" for _ in range(5)]
    f = tmp_path / name
    f.write_text("\n".join(lines) + "\n")
    return f


LIMITS = ("--lsl", "73.9", "--usl", "74.1")


@pytest.mark.parametrize("shift_at", [5, 23])
def test_a_shift_is_flagged_wherever_it_is_in_the_file(tmp_path: Path, shift_at: int) -> None:
    f = _piston_file(tmp_path, shift_at)
    status = json.loads(run(str(f), *LIMITS, "--json").stdout)
    assert status["stable"] is False
    assert (1, "x", str(shift_at)) in {(v["rule"], v["chart"], v["subgroup"]) for v in status["violations"]}
    # limits from the whole file: the centre is the mean of all 125 values
    values = [float(line.split(",")[1]) for line in f.read_text().splitlines()[1:]]
    assert status["control"]["center"] == pytest.approx(sum(values) / len(values), rel=1e-14)
    human = run(str(f), *LIMITS)
    assert human.exit_code == 0
    assert "limits from the whole file" in human.stdout
    assert f"flagged subgroups: {shift_at}" in human.stdout or f", {shift_at}" in human.stdout


def test_an_in_control_file_is_stable(tmp_path: Path) -> None:
    status = json.loads(run(str(_piston_file(tmp_path, None)), *LIMITS, "--json").stdout)
    assert status["stable"] is True and status["violations"] == []


def test_baseline_subgroups_takes_the_limits_from_the_first_k(tmp_path: Path) -> None:
    f = _piston_file(tmp_path, 5)
    whole = json.loads(run(str(f), *LIMITS, "--json").stdout)
    first10 = json.loads(run(str(f), *LIMITS, "--baseline-subgroups", "10", "--json").stdout)
    values = [float(line.split(",")[1]) for line in f.read_text().splitlines()[1:51]]
    assert first10["control"]["center"] == pytest.approx(sum(values) / 50, rel=1e-14)
    assert (1, "5") in {(v["rule"], v["subgroup"]) for v in first10["violations"]}  # in its own baseline
    for key in ("cp", "cpk", "pp", "ppk", "sigma_within", "mean", "cpk_ci"):
        assert first10[key] == whole[key], key  # the capability numbers do not depend on the chart
    late = json.loads(run(str(_piston_file(tmp_path, 23, name="late.csv")), *LIMITS, "--baseline-subgroups",
                          "10", "--json").stdout)
    assert (1, "23") in {(v["rule"], v["subgroup"]) for v in late["violations"]}  # phase II
    few = run(str(f), *LIMITS, "--baseline-subgroups", "26")
    assert few.exit_code == 2 and "--baseline-subgroups 26: the file has only 25 subgroups" in few.stderr


def test_exclude_flagged_recomputes_the_limits(tmp_path: Path) -> None:
    f = _piston_file(tmp_path, 5)
    plain = json.loads(run(str(f), *LIMITS, "--json").stdout)
    revised = json.loads(run(str(f), *LIMITS, "--exclude-flagged", "--json").stdout)
    flagged = {v["subgroup"] for v in plain["violations"]}
    rows = [line.split(",") for line in f.read_text().splitlines()[1:]]
    kept = [float(v) for sg, v in rows if sg not in flagged]
    assert revised["control"]["center"] == pytest.approx(sum(kept) / len(kept), rel=1e-13)
    assert revised["control"]["center"] < plain["control"]["center"]
    assert "5" in {v["subgroup"] for v in revised["violations"]}
    assert revised["cpk"] == plain["cpk"]


# ------------------------------------------------------------------------------------------ rows and numbers
def test_rows_count_data_records_and_lines_count_the_file(tmp_path: Path) -> None:
    """A row is a data record (header and blank lines are not rows); the line is where it is in the file."""
    f = tmp_path / "gap.csv"
    f.write_text("value\n" + "1.0\n" * 20 + "\n" + "1.0\n" * 20 + "oops\n")
    res = run(str(f), "--usl", "9")
    assert res.exit_code == 2
    assert "row 41 (line 43): value 'oops' is not a number" in res.stderr, res.stderr
    j = tmp_path / "gap.jsonl"
    j.write_text('{"value": 1}\n\n{"value": 2}\n{"value": "x"}\n')
    res = run(str(j), "--usl", "9")
    assert res.exit_code == 2 and "row 3 (line 4)" in res.stderr, res.stderr
    q = tmp_path / "quoted.csv"  # a quoted field spanning two lines is one row starting on its first line
    q.write_text('value,subgroup\n1.0,"a\nb"\n2.0,c\noops,d\n')
    res = run(str(q), "--usl", "9")
    assert res.exit_code == 2 and "row 3 (line 5)" in res.stderr, res.stderr


@pytest.mark.parametrize("text", ["1_000", "1_0.5", "١٢", "0x10", "1.5.2", "--1", "1e", ".", "½"])
def test_only_plain_decimal_or_scientific_numbers(tmp_path: Path, text: str) -> None:
    f = tmp_path / "n.csv"
    f.write_text(f"value\n1.0\n{text}\n", encoding="utf-8")
    res = run(str(f), "--usl", "9")
    assert res.exit_code == 2, res.output
    assert f"row 2 (line 3): value {text!r} is not a number" in res.stderr, res.stderr
    j = tmp_path / "n.jsonl"
    j.write_text(json.dumps({"value": 1.0}) + "\n" + json.dumps({"value": text}) + "\n", encoding="utf-8")
    res = run(str(j), "--usl", "9")
    assert res.exit_code == 2 and "row 2 (line 2)" in res.stderr and "is not a number" in res.stderr


def test_plain_numbers_are_accepted(tmp_path: Path) -> None:
    f = tmp_path / "ok.csv"
    f.write_text("value\n+1.5\n.5\n5.\n1e-3\n1E+1\n 2.5 \n-0\n")
    res = run(str(f), "--usl", "20", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 7
    inf = tmp_path / "inf.csv"
    inf.write_text("value\n1.0\n-Infinity\n")
    res = run(str(inf), "--usl", "20")
    assert res.exit_code == 2 and "row 2 (line 3): value '-Infinity' is not finite" in res.stderr
