"""The `linli` front door: commands run, print what they did, and fail clearly on bad arguments."""

from __future__ import annotations

from typer.testing import CliRunner

from linli.cli import app

runner = CliRunner()


def test_generate_then_ingest_then_replay(tmp_path):
    out, lake = tmp_path / "city", tmp_path / "lake"
    result = runner.invoke(app, ["generate", "--out", str(out), "--residents", "1000", "--days", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "door_access" in result.output and (out / "truth" / "manifest.json").is_file()
    result = runner.invoke(app, ["ingest", "--from", str(out / "deliveries"), "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    assert "registry" in result.output and "failed" in result.output
    # the summary is whole when written to a pipe: every source's name, every count's heading
    for name in ("building_geometry", "device_registry", "door_access", "rows quarantined"):
        assert name in result.output
    assert any((lake / "raw" / "door_access").rglob("*.parquet"))
    result = runner.invoke(app, ["quarantine", "replay", "--from", str(out / "deliveries"), "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    # the raw zone's suites need no build
    result = runner.invoke(app, ["quality", "run", "--lake", str(lake), "--warehouse", str(tmp_path / "wh"),
                                 "--quality-dir", str(tmp_path / "quality"), "--asset", "raw.door_access"])
    assert result.exit_code == 0 and "rules failed" in result.output, result.output


def _refused(args: list[str]) -> str:
    """The message of a command refused as a usage error (exit 2, no traceback), without the
    box and the wrapping to the terminal."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output  # an uncaught error exits 1
    return "".join(ch for ch in result.output if not ch.isspace() and ch not in "│╭╮╰╯─")


def test_bad_arguments_are_refused_with_a_message(tmp_path):
    a_file, deliveries = tmp_path / "a_file", tmp_path / "deliveries"
    a_file.write_text("x")
    deliveries.mkdir()
    assert "residents" in _refused(["generate", "--out", str(tmp_path), "--residents", "10"])
    assert "'2024-13-01'isnotadateYYYY-MM-DD" in _refused(["generate", "--out", str(tmp_path), "--start-date", "2024-13-01"])
    assert "isafile,notadirectory" in _refused(["generate", "--out", str(a_file)])
    assert "notadirectory" in _refused(["ingest", "--from", str(tmp_path / "missing"), "--lake", str(tmp_path / "lake")])
    assert "isafile,notadirectory" in _refused(["ingest", "--from", str(deliveries), "--lake", str(a_file)])
    assert "notadirectory" in _refused(["quarantine", "replay", "--from", str(tmp_path / "missing"), "--lake", str(tmp_path)])
    assert "holdsnolake" in _refused(["quarantine", "replay", "--from", str(deliveries), "--lake", str(tmp_path / "typo")])
    assert not (tmp_path / "typo").exists()  # a mistyped lake is not made
    (tmp_path / "lake" / "ledger").mkdir(parents=True)
    assert "'nosuch'isnosource" in _refused(["quarantine", "replay", "--from", str(deliveries), "--lake", str(tmp_path / "lake"), "--source", "nosuch"])
    result = runner.invoke(app, ["quarantine", "replay", "--from", str(deliveries), "--lake", str(tmp_path / "lake")])
    assert result.exit_code == 0 and "nothing to replay" in result.output
    assert "holdsnolake" in _refused(["build", "--lake", str(tmp_path / "typo"), "--warehouse", str(tmp_path / "wh")])
    assert not (tmp_path / "wh").exists()
    assert "'foo'isnograin" in _refused(["quality", "scores", "--grain", "foo", "--quality-dir", str(tmp_path)])
    assert "holdsnoqualityresults" in _refused(["quality", "scores", "--quality-dir", str(tmp_path / "typo")])
    assert "holdsnoqualityresults" in _refused(["quality", "list", "--quality-dir", str(tmp_path / "typo")])
    assert "nobuildunder" in _refused(["quality", "run", "--warehouse", str(tmp_path / "wh"), "--lake", str(tmp_path / "lake")])
