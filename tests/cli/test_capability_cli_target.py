"""``cpkmon capability`` rejects a target outside the spec limits with exit status 2 (issue 9, finding 7)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cpkmon.cli import app


def test_target_outside_the_limits_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("value\n" + "\n".join(f"{74.0 + 0.001 * (i % 7):.3f}" for i in range(30)) + "\n")
    runner = CliRunner()
    bad = runner.invoke(app, ["capability", str(f), "--lsl", "73.95", "--usl", "74.05", "--target", "74.2"])
    assert bad.exit_code == 2
    assert "bad specification" in bad.output and "target (74.2) must lie within the spec limits" in bad.output
    ok = runner.invoke(app, ["capability", str(f), "--lsl", "73.95", "--usl", "74.05", "--target", "74.05"])
    assert ok.exit_code == 0, ok.output
