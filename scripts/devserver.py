"""`make run`: migrate, load the demo, then run web + Celery worker + Celery beat until Ctrl-C.

The same three commands are what docker-compose.yml runs (with gunicorn instead of runserver).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = os.environ.get("PORT", "8000")
RESTARTED = ("worker", "beat")


def main() -> int:
    env = dict(os.environ)
    env.setdefault("SITE_URL", f"http://{HOST}:{PORT}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([PY, "manage.py", "demo_setup"], cwd=ROOT, env=env, check=True)
    commands = {
        "web": [PY, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"],
        "worker": [PY, "-m", "celery", "-A", "config", "worker", "--concurrency", "2",
                   "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        "beat": [PY, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}
    print(f"\nIntacct Connect is running at {env['SITE_URL']}/  (simulator: {env['SITE_URL']}/simulator/)"
          "\nPress Ctrl-C to stop web, worker and beat.\n", flush=True)

    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            time.sleep(0.5)
            for name in RESTARTED:
                # Like compose's restart policy: a worker or beat that exits on its own is started again.
                if not stopping and procs[name].poll() is not None:
                    print(f"{name} exited with {procs[name].returncode}; starting it again", file=sys.stderr,
                          flush=True)
                    time.sleep(2)
                    procs[name] = subprocess.Popen(commands[name], cwd=ROOT, env=env)
            if procs["web"].poll() is not None:
                break
    finally:
        stop()
        for name, proc in procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.returncode not in (0, -signal.SIGTERM, None):
                print(f"{name} exited with {proc.returncode}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
