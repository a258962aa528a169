"""Superset for Linli: install, initialise its metadata, provision, start — from the platform's side.

Superset runs in its own virtual environment (.venv-superset, made by scripts/ensure-superset.sh):
it pins SQLAlchemy 1.4, pandas and numpy versions the platform has outgrown. This module only
starts processes there; the code that runs inside Superset is provision.py and superset_config.py.

    DATA/dashboards/superset.db          metadata (SQLite unless LINLI_SUPERSET_METADATA_URI)
    DATA/dashboards/secret_key           per-install session secret
    DATA/dashboards/quality_views.duckdb views over DATA/quality's Parquet (quality_views.py)
    DATA/dashboards/superset.log         the server's log
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from linli.settings import Settings, get_settings
from linli.warehouse import current
from serving.dashboards.quality_views import write_quality_views

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("LINLI_SUPERSET_VENV", ROOT / ".venv-superset"))
CONFIG = Path(__file__).resolve().parent / "superset_config.py"


class SupersetError(RuntimeError):
    pass


@dataclass
class Dashboards:
    url: str
    process: subprocess.Popen | None
    provisioned: dict

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def ensure_installed() -> Path:
    """Superset's environment, installed on first use (a no-op afterwards)."""
    run = subprocess.run(["bash", str(ROOT / "scripts" / "ensure-superset.sh")], capture_output=True, text=True,
                         env={**os.environ, "LINLI_SUPERSET_VENV": str(VENV)})
    if run.returncode != 0:
        raise SupersetError(f"installing Superset failed:\n{run.stderr[-3000:]}")
    return VENV / "bin"


def home(data_dir: Path) -> Path:
    path = Path(data_dir).resolve() / "dashboards"
    path.mkdir(parents=True, exist_ok=True)
    return path


def quality_results(data_dir: Path) -> Path:
    """The quality results' Parquet files the quality views read."""
    return Path(data_dir).resolve() / "quality"


def environment(data_dir: Path, settings: Settings | None = None) -> dict[str, str]:
    s = settings or get_settings()
    h = home(data_dir)
    secret = s.superset_secret_key
    if not secret:
        key_file = h / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(42))
            key_file.chmod(0o600)
        secret = key_file.read_text().strip()
    return {
        **os.environ,
        "SUPERSET_CONFIG_PATH": str(CONFIG), "SUPERSET_HOME": str(h), "FLASK_APP": "superset",
        "LINLI_SUPERSET_SECRET_KEY": secret, "LINLI_SUPERSET_METADATA_URI": metadata_uri(data_dir, s),
        # the only files a DuckDB connection of Superset's may read: the quality results (superset_config)
        "LINLI_SUPERSET_DUCKDB_DIRS": json.dumps([str(quality_results(data_dir))]),
        # provision.py imports serving.dashboards from this checkout
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def metadata_uri(data_dir: Path, settings: Settings | None = None) -> str:
    s = settings or get_settings()
    return s.superset_metadata_uri or f"sqlite:///{home(data_dir) / 'superset.db'}"


def initialise(data_dir: Path, settings: Settings | None = None) -> None:
    """Create or migrate the metadata database and Superset's own roles, once per database."""
    env = environment(data_dir, settings)
    stamp = home(data_dir) / f".initialised-{hashlib.sha256(env['LINLI_SUPERSET_METADATA_URI'].encode()).hexdigest()[:12]}"
    if stamp.exists():
        return
    for args in (["db", "upgrade"], ["init"]):
        _superset(args, env)
    metadata = home(data_dir) / "superset.db"
    if metadata.exists():  # it holds the logins' password hashes
        metadata.chmod(0o600)
    stamp.touch()


def provision(data_dir: Path, warehouse: Path | None = None, settings: Settings | None = None) -> dict:
    """Load the database connections, datasets, charts, dashboards, area roles, RLS and demo users."""
    s = settings or get_settings()
    data_dir = Path(data_dir).resolve()
    serving_db = current(Path(warehouse) if warehouse else data_dir / "warehouse")
    if not serving_db.exists():
        raise SupersetError(f"no serving store at {serving_db}: build the libraries first (linli build)")
    quality_db = write_quality_views(quality_results(data_dir), home(data_dir) / "quality_views.duckdb")
    env = environment(data_dir, s)
    env["LINLI_SUPERSET_ADMIN_PASSWORD"] = s.superset_admin_password
    env["LINLI_SUPERSET_PUBLISHED_PASSWORDS"] = json.dumps([Settings.model_fields[f].default for f in PUBLISHED])
    env["LINLI_SUPERSET_COMMUNITY_PASSWORD"] = s.superset_community_password
    args = [str(VENV / "bin" / "python"), "-m", "serving.dashboards.provision", "--serving-db", str(serving_db),
            "--quality-db", str(quality_db), "--admin-user", s.superset_admin_user, "--community-user", s.superset_community_user]
    if s.superset_community:
        args += ["--community", s.superset_community]
    return _inside_superset(args, env, lambda err: f"provisioning failed:\n{err[-4000:]}")


def grant(data_dir: Path, users: dict[str, str], password: str, settings: Settings | None = None) -> dict[str, str]:
    """Logins bound to one area each ({name: banner, street or community code}); returns {name: area name}."""
    if not password:
        raise SupersetError("a password is needed for the new logins")
    env = {**environment(Path(data_dir).resolve(), settings), "LINLI_SUPERSET_GRANT_PASSWORD": password}
    args = [str(VENV / "bin" / "python"), "-m", "serving.dashboards.grant", *(f"--user={n}={c}" for n, c in users.items())]
    # the reason is the last line: Superset's own start-up logging comes before it
    return _inside_superset(args, env, lambda err: f"granting failed: {err.strip().splitlines()[-1] if err.strip() else 'no reason given'}")


def _inside_superset(args: list[str], env: dict[str, str], failure) -> dict:
    """Run one of Linli's modules with Superset's Python and return the JSON line it prints last;
    `failure` turns its stderr into the error's message."""
    run = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    if run.returncode != 0:
        raise SupersetError(failure(run.stderr))
    return json.loads(run.stdout.strip().splitlines()[-1])


def start(data_dir: Path, port: int, host: str = "127.0.0.1", settings: Settings | None = None, workers: int = 2) -> subprocess.Popen:
    env = environment(data_dir, settings)
    log = open(home(data_dir) / "superset.log", "ab")
    # gunicorn with threads: a dashboard asks for all its charts at once
    proc = subprocess.Popen([str(VENV / "bin" / "gunicorn"), "--bind", f"{host}:{port}", "--workers", str(workers),
                             "--worker-class", "gthread", "--threads", "8", "--timeout", "120", "--limit-request-line", "0",
                             "--limit-request-field_size", "0", "superset.app:create_app()"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home(data_dir), start_new_session=True)
    log.close()  # the server holds its own copy
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SupersetError(f"Superset exited with {proc.returncode}: see {home(data_dir) / 'superset.log'}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(1)
    proc.terminate()
    raise SupersetError(f"Superset did not answer on {url} within 3 minutes: see {home(data_dir) / 'superset.log'}")


PUBLISHED = ("superset_admin_password", "superset_community_password")  # the demo's, in this repository


def refuse_published_passwords(s: Settings, host: str, logins: list[str] = ()) -> None:
    """Superset may listen beyond this machine only once the demo's passwords are changed: in the
    settings, and on the logins (`logins`: those provisioning found still holding one)."""
    if all(ipaddress.ip_address(a[4][0].split("%")[0]).is_loopback for a in socket.getaddrinfo(host, None)):
        return
    for field in PUBLISHED:
        if getattr(s, field) == Settings.model_fields[field].default:
            raise SupersetError(f"LINLI_{field.upper()} is the published demo password: set another before serving on {host}")
    if logins:
        raise SupersetError(f"the logins {', '.join(logins)} still have the published demo password: change them "
                            f"(linli dashboards grant, or Superset's user settings) before serving on {host}")


def start_dashboards(data_dir: Path | None = None, warehouse: Path | None = None, port: int | None = None,
                     host: str = "127.0.0.1", log=print) -> Dashboards:
    """Everything `linli serve dashboards` and the demo need: install, initialise, provision, start."""
    s = get_settings()
    data_dir = Path(data_dir or s.data_dir).resolve()
    port = port or s.superset_port
    refuse_published_passwords(s, host)
    log("Superset: installing (first run only) and initialising its metadata")
    ensure_installed()
    initialise(data_dir, s)
    log("Superset: loading the dashboards")
    provisioned = provision(data_dir, warehouse, s)
    refuse_published_passwords(s, host, provisioned["published_passwords"])
    proc = start(data_dir, port, host, s)
    return Dashboards(f"http://{host}:{port}", proc, provisioned)


def _superset(args: list[str], env: dict[str, str]) -> None:
    run = subprocess.run([str(VENV / "bin" / "superset"), *args], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SupersetError(f"superset {' '.join(args)} failed:\n{(run.stderr or run.stdout)[-3000:]}")

