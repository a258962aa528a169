"""`linli backup` / `linli restore`: a restore into an empty directory gives identical checksums."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bench.reliability.checksums import lake_checksums, lake_problems, store_checksums
from linli.backup import BackupError, backup, restore
from linli.cli import app as cli
from linli.warehouse import current
from serving.api.app import create_app
from serving.api.audit import verify
from serving.api.keys import KeyStore


@pytest.fixture(scope="module")
def data(lake, warehouse, tmp_path_factory):
    """A data directory over the session's lake and build, with API state that has audited requests."""
    root = tmp_path_factory.mktemp("data")
    (root / "lake").symlink_to(lake)
    (root / "warehouse").symlink_to(warehouse)
    client = TestClient(create_app(warehouse, root / "api"))
    token = KeyStore(root / "api" / "keys.sqlite").create("backup test", ["people:read", "events:read"], "1506")
    for path in ("people/residents", "events/door_access", "people/households"):
        assert client.get(f"/v1/{path}", headers={"X-API-Key": token}, params={"limit": 5}).status_code == 200
    return root, token


def test_restore_into_an_empty_directory_gives_identical_checksums(data, tmp_path):
    root, token = data
    runner = CliRunner()
    made = runner.invoke(cli, ["backup", "--to", str(tmp_path / "backup"), "--data-dir", str(root)])
    assert made.exit_code == 0, made.output
    secrets = {f: oct((tmp_path / "backup" / "api" / f).stat().st_mode & 0o777) for f in ("keys.sqlite", "alarms.sqlite", "jwt.secret")}
    assert set(secrets.values()) == {"0o600"}, secrets
    restored = tmp_path / "restored"
    done = runner.invoke(cli, ["restore", "--from", str(tmp_path / "backup"), "--data-dir", str(restored)])
    assert done.exit_code == 0, done.output

    lake_before, lake_after = lake_checksums(root / "lake"), lake_checksums(restored / "lake")
    assert len(lake_before) > 20 and lake_after == lake_before
    assert lake_problems(restored / "lake") == []
    store_before = store_checksums(current(root / "warehouse").resolve())
    assert len(store_before) > 30 and store_checksums(current(restored / "warehouse").resolve()) == store_before
    assert (restored / "api" / "audit.jsonl").read_bytes() == (root / "api" / "audit.jsonl").read_bytes()
    assert verify(restored / "api" / "audit.jsonl") == [] and len((restored / "api" / "audit.jsonl").read_text().splitlines()) >= 3
    assert KeyStore(restored / "api" / "keys.sqlite").authenticate(token) is not None, "keys survive a restore"
    # the restored data directory serves: the same key reads the same rows
    client = TestClient(create_app(restored / "warehouse", restored / "api"))
    assert client.get("/v1/people/residents", headers={"X-API-Key": token}, params={"limit": 5}).json()["data"]


def test_restore_refuses_a_damaged_backup_or_a_directory_in_use(data, tmp_path):
    root, _ = data
    backup(tmp_path / "b", root / "lake", root / "warehouse", root / "api")
    target = tmp_path / "t"
    with pytest.raises(BackupError, match="empty"):
        backup(tmp_path / "b", root / "lake", root / "warehouse", root / "api")
    (target / "lake").mkdir(parents=True)
    (target / "lake" / "something").write_text("in use")
    with pytest.raises(BackupError, match="empty directories"):
        restore(tmp_path / "b", target / "lake", target / "warehouse", target / "api")
    victim = next((tmp_path / "b" / "lake" / "raw").rglob("*.parquet"))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(BackupError, match="checksums"):
        restore(tmp_path / "b", tmp_path / "u" / "lake", tmp_path / "u" / "warehouse", tmp_path / "u" / "api")
    assert not (tmp_path / "u").exists(), "nothing is written from a damaged backup"


def test_a_backup_taken_while_ingest_runs_is_consistent(city, tmp_path):
    """The writer lock makes the lake's copy a state some run really left: whole deliveries only."""
    lake = tmp_path / "lake"
    ingest = subprocess.Popen([sys.executable, "-m", "linli.cli", "ingest", "--from", str(city / "deliveries"), "--lake", str(lake)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    copies = []
    try:
        while ingest.poll() is None or not copies:
            to = tmp_path / f"b{len(copies)}"
            if (lake / "ledger").exists():
                backup(to, lake, tmp_path / "no-warehouse", tmp_path / "no-api")
                copies.append(to)
            threading.Event().wait(0.3)
    finally:
        ingest.wait(120)
    assert ingest.returncode == 0
    for to in copies:
        restored = tmp_path / f"r-{to.name}"
        restore(to, restored / "lake", restored / "warehouse", restored / "api")
        assert lake_problems(restored / "lake") == [], to.name
    counts = [len(list((to / "lake" / "ledger").glob("*.parquet"))) for to in copies]
    assert counts == sorted(counts), "each backup holds at least what the one before it held"
