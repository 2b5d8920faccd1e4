"""Container healthcheck: GET /healthz on this container's gunicorn; exit 0 only on 200.

Sends the first ALLOWED_HOSTS name as Host (production refuses unknown hosts) and says the original
request was HTTPS, as the TLS proxy in front would. Standard library only: the image has no curl.
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

host = (os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip() or "localhost").lstrip(".")
port = os.environ.get("HEALTHCHECK_PORT", "8000")
request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz",
                                 headers={"Host": host, "X-Forwarded-Proto": "https"})
try:
    with urllib.request.urlopen(request, timeout=8) as response:  # noqa: S310 - fixed local URL
        sys.exit(0 if response.status == 200 else 1)
except urllib.error.HTTPError as exc:
    print(exc.read().decode(errors="replace")[:500])
    sys.exit(1)
except OSError as exc:
    print(f"healthcheck: {exc}")
    sys.exit(1)
