"""Benchmark: the simulator's own CPU time per answered page, by what the request asks for.

Prints CPU ms per 2,000-record `query` page of APBILL (100,000 generated) and per 1,000-record readByQuery
page: the 14 fields our client reads (the generated core), the same answered gzip-encoded, and the
third-party SDK's default APBILL field list (which needs the lazily computed standard fields).
Run with `.venv/bin/python bench/bench_simulator_pages.py`. In process, on a throwaway SQLite database.
"""
from __future__ import annotations

import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORE = ("RECORDNO", "RECORDID", "VENDORID", "VENDORNAME", "DOCNUMBER", "STATE", "WHENCREATED", "WHENPOSTED",
        "WHENDUE", "TOTALENTERED", "TOTALDUE", "CURRENCY", "DESCRIPTION", "WHENMODIFIED")
SDK_DEFAULT = ("RECORDNO", "RECORDID", "RECORD_URL", "STATE", "VENDORID", "VENDORNAME", "DOCNUMBER", "TERMNAME",
               "WHENCREATED", "WHENPOSTED", "TOTALENTERED", "TOTALSELECTED", "TOTALPAID", "TOTALDUE", "WHENDUE",
               "WHENPAID", "RECPAYMENTDATE", "PAYMENTPRIORITY", "DESCRIPTION", "ONHOLD", "BASECURR", "CURRENCY",
               "WHENMODIFIED", "DUE_IN_DAYS", "PRBATCH")
ROUNDS = 15


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ic-bench-pages-"))
    os.environ.update({"VAR_DIR": str(workdir), "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
                       "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings"})
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import RequestFactory

    from simulator import gateway
    from simulator.demo import DEMO_LOGIN, DEMO_PASSWORD, build_company

    call_command("migrate", verbosity=0)
    build_company("BENCH-PAGES", sizes={"APBILL": 100_000})
    factory = RequestFactory()

    def request(function: str) -> bytes:
        return (
            f"<?xml version='1.0' encoding='UTF-8'?><request><control><senderid>{settings.INTACCT_SENDER_ID}"
            f"</senderid><password>{settings.INTACCT_SENDER_PASSWORD}</password><controlid>b</controlid>"
            "<uniqueid>false</uniqueid><dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace>"
            f"</control><operation><authentication><login><userid>{DEMO_LOGIN}</userid>"
            f"<companyid>BENCH-PAGES</companyid><password>{DEMO_PASSWORD}</password></login></authentication>"
            f"<content><function controlid='f'>{function}</function></content></operation></request>"
        ).encode()

    def query(fields: tuple[str, ...]) -> bytes:
        select = "".join(f"<field>{f}</field>" for f in fields)
        return request(f"<query><object>APBILL</object><select>{select}</select><orderby><order><field>RECORDNO"
                       "</field><ascending/></order></orderby><pagesize>2000</pagesize><offset>50000</offset></query>")

    def read_by_query(fields: tuple[str, ...]) -> bytes:
        return request(f"<readByQuery><object>APBILL</object><fields>{','.join(fields)}</fields>"
                       "<query>RECORDNO &gt; 50000</query><pagesize>1000</pagesize></readByQuery>")

    cases = [
        ("query 2000, our 14 fields", query(CORE), ""),
        ("query 2000, our 14 fields, gzip", query(CORE), "gzip"),
        ("query 2000, SDK default 25 fields", query(SDK_DEFAULT), ""),
        ("readByQuery 1000, our 14 fields", read_by_query(CORE), ""),
        ("readByQuery 1000, SDK default 25 fields", read_by_query(SDK_DEFAULT), ""),
    ]
    print(f"| request | CPU ms per page (min of {ROUNDS}) | median | KB sent |")
    print("|---|---|---|---|")
    for label, body, encoding in cases:
        times = []
        size = 0
        for _ in range(ROUNDS):
            req = factory.post(settings.SIMULATOR_GATEWAY_PATH, data=body, content_type="application/xml",
                               HTTP_ACCEPT_ENCODING=encoding)
            started = time.process_time()
            response = gateway.handle(req)
            times.append(time.process_time() - started)
            size = len(response.content)
            text = gzip.decompress(response.content) if encoding else response.content
            assert response.status_code == 200 and b"<result><status>success</status>" in text
        times.sort()
        print(f"| {label} | {times[0] * 1000:.1f} | {times[len(times) // 2] * 1000:.1f} | {size / 1024:.0f} |")


if __name__ == "__main__":
    main()
