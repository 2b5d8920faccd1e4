"""What the benchmarks share to serve the app: a free loopback port, gunicorn, and waiting until it answers."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_env(var_dir: Path, site: str) -> dict[str, str]:
    """The environment of an app served at ``site`` on the embedded defaults in ``var_dir`` (SQLite, whatever
    DATABASE_URL says outside)."""
    env = {**os.environ, "VAR_DIR": str(var_dir), "SITE_URL": site, "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("DATABASE_URL", None)
    return env


def gunicorn(port: int, env: dict) -> subprocess.Popen:
    """The app (and its simulator) under gunicorn on ``port``: one process, four threads, as the benchmarks measure."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--threads", "4", "--worker-class", "gthread", "--log-level", "warning"], cwd=ROOT, env=env)


def wait_until_up(site: str, path: str = "/simulator/", seconds: float = 30) -> None:
    """Return once ``path`` answers (or ``seconds`` passed: the benchmark's first request then says why)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(site + path, timeout=2)  # noqa: S310 - loopback only
            return
        except OSError:
            time.sleep(0.2)
