"""Benchmark: time from "Connect" (the step 6 POST) to the full validation result, healthy company.

Everything is the embedded default (SQLite, filesystem broker) on a throwaway VAR_DIR: the web app and the
simulator run under gunicorn, validation runs in a real `celery worker` process, and this script acts as the
browser (log in, POST the Connect form) and watches the database until the run has finished.
Target: under 3 s. Run with `.venv/bin/python bench/bench_validation.py [--runs N]`.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from serving import free_port, gunicorn, wait_until_up  # noqa: E402

ADMIN = "bench-admin"
COMPANY = "BENCH-VALIDATE"


def start(var_dir: Path) -> tuple[list[subprocess.Popen], str, dict]:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    env = {**os.environ, "VAR_DIR": str(var_dir), "SITE_URL": site, "LOG_LEVEL": "WARNING",
           # Many Connects in a row from one address: the Connect rate limit would refuse them (429).
           "RATE_LIMIT_ENABLED": "false",
           "DJANGO_SETTINGS_MODULE": "config.settings", "BENCH_ADMIN_PASSWORD": secrets.token_urlsafe(18),
           "CELERY_QUEUE": "bench-validation"}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "INTACCT_ENDPOINT_URL"):
        env.pop(name, None)
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    make = ("import os\nfrom simulator.demo import build_company, REALISTIC_SIZES\nfrom connector import services\n"
            f"build_company({COMPANY!r}, sizes=REALISTIC_SIZES)\n"
            f"admin = services.user_create(username={ADMIN!r}, email='bench@acme.test', "
            "password=os.environ['BENCH_ADMIN_PASSWORD'])\n"
            "org = services.organisation_create(name='Bench Ltd', slug='bench', admin=admin)\n"
            "services.connection_set_permission_model(connection=org.connection, permission_model='role', "
            "by=admin)\n")
    subprocess.run([py, "manage.py", "shell", "-c", make], cwd=ROOT, env=env, check=True)
    server = gunicorn(port, env)
    worker = subprocess.Popen(
        [py, "-m", "celery", "-A", "config", "worker", "-Q", "bench-validation", "--concurrency", "2",
         "--without-mingle", "--without-gossip", "--loglevel", "WARNING"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(site, "/accounts/login/")
    return [server, worker], site, env


def csrf(client: httpx.Client, url: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(url).text)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ic-bench-validation-") as tmp:
        processes, site, env = start(Path(tmp))
        try:
            os.environ.update({k: env[k] for k in ("VAR_DIR", "SITE_URL", "DJANGO_SETTINGS_MODULE")})
            import django

            django.setup()
            logging.getLogger("httpx").setLevel(logging.WARNING)
            from connector.models import ValidationRun
            from simulator.demo import DEMO_PASSWORD

            client = httpx.Client(base_url=site, follow_redirects=False, timeout=30)
            login = "/accounts/login/"
            client.post(login, data={"username": ADMIN, "password": env["BENCH_ADMIN_PASSWORD"],
                                     "csrfmiddlewaretoken": csrf(client, login)}, headers={"Referer": site + login})
            step6 = "/organisations/bench/setup/step-6/"
            totals, worker_ms, statuses, requests = [], [], [], []
            for i in range(args.runs + 1):  # the first run warms the worker up and is not counted
                token = csrf(client, step6)
                before = ValidationRun.objects.order_by("-id").values_list("id", flat=True).first() or 0
                started = time.perf_counter()
                response = client.post(step6, data={"company_id": COMPANY, "user_id": "ws_connect",
                                                    "password": DEMO_PASSWORD, "entity_id": "",
                                                    "csrfmiddlewaretoken": token},
                                       headers={"Referer": site + step6})
                assert response.status_code == 302, response.status_code
                while True:
                    run = ValidationRun.objects.filter(id__gt=before).first()
                    if run is not None and run.is_finished:
                        break
                    if time.perf_counter() - started > 60:
                        raise SystemExit("a validation did not finish within 60 s")
                    time.sleep(0.005)
                elapsed = time.perf_counter() - started
                if i:
                    totals.append(elapsed)
                    worker_ms.append((run.finished_at - run.started_at).total_seconds())
                    statuses.append(run.status)
                    requests.append(run.requests)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
    totals.sort()
    p95 = totals[max(0, round(0.95 * len(totals)) - 1)]
    print(f"\n## Validation: Connect (POST) to full result, healthy company, {len(totals)} runs\n")
    print("Embedded default: SQLite, filesystem broker, real celery worker, simulator under gunicorn.\n")
    print("| figure | median s | p95 s | max s |\n|---|---|---|---|")
    print(f"| POST to finished run | {statistics.median(totals):.3f} | {p95:.3f} | {max(totals):.3f} |")
    worker_ms.sort()
    print(f"| checks in the worker (started to finished) | {statistics.median(worker_ms):.3f} | "
          f"{worker_ms[max(0, round(0.95 * len(worker_ms)) - 1)]:.3f} | {max(worker_ms):.3f} |")
    print(f"| requests to Intacct per validation | {statistics.median(requests):.0f} | "
          f"{sorted(requests)[max(0, round(0.95 * len(requests)) - 1)]} | {max(requests)} |")
    print(f"\nResults: {sorted(set(statuses))}; target < 3 s: {'met' if p95 < 3 else 'NOT met'}; "
          f"target <= 5 requests: {'met' if max(requests) <= 5 else 'NOT met'}")
    if set(statuses) != {"passed"}:
        raise SystemExit("a healthy company did not pass")


if __name__ == "__main__":
    main()
