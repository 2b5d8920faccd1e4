"""Run one hostile REST answer through the client in this (fresh) process; print what happened as JSON.

Used by tests/rest/test_client_memory.py: peak RSS of a fresh process belongs to this answer alone (the
parser's buffers are yajl's, in C, which tracemalloc cannot see).
"""
from __future__ import annotations

import argparse
import json
import resource
from collections.abc import Iterator

import httpx

from connector.intacct_rest import ClientCredentialsGrant, IntacctRestClient, RestConfig, errors

MB = 1024 * 1024


def body(case: str, megabytes: int) -> Iterator[bytes]:
    yield b'{"ia::result": [{"key": "1", "id": "'
    if case == "long-string":
        for _ in range(megabytes):
            yield b"x" * MB
    elif case == "whitespace":
        yield b'"'
        for _ in range(megabytes):
            yield b" " * MB
        yield b', "x": "'
    elif case == "many-records":
        yield b'"}'
        for n in range(megabytes * 20_000):  # ~50 bytes each
            yield b', {"key": "%d", "id": "B-%07d"}' % (n, n)
        yield b', {"id": "'
    yield b'"}], "ia::meta": {"totalCount": 1, "start": 1, "pageSize": 4000, "next": null}}'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--mb", type=int, default=40)
    args = parser.parse_args()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/token"):
            return httpx.Response(200, json={"access_token": "hostile-access-token", "expires_in": 3600})
        return httpx.Response(200, content=body(args.case, args.mb), headers={"content-type": "application/json"})

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = RestConfig(client_id="h", client_secret="hostile-secret", transport=httpx.MockTransport(handler),
                        sleep=lambda s: None)
    outcome: dict[str, object] = {"case": args.case}
    with IntacctRestClient(config, ClientCredentialsGrant("ws", "CO")) as client:
        try:
            page = client.query_page("accounts-payable/bill", ["key", "id"], size=4000)
            outcome.update(result="accepted", records=len(page.records))
        except errors.IntacctError as exc:
            outcome.update(result="refused", error=type(exc).__name__, permanent=exc.permanent)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome["peak_rss_growth_mb"] = (after - before) / 1024
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
