"""Secrets the embedded (no environment) configuration generates for itself under var/.

Production never reaches this module: its settings refuse to start without real values.
"""
from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path


def var_secret(var_dir: Path, name: str, *, kind: str = "token") -> str:
    """Return the secret stored in var/<name>, creating it (mode 0600) on first use."""
    path = Path(var_dir) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fernet":
        value = base64.urlsafe_b64encode(os.urandom(32)).decode()
    else:
        value = secrets.token_urlsafe(40)
    # Write to a private temporary file, then link it into place: a process starting at the same
    # moment (web and worker do) either wins or reads the winner's value, never a half-written one.
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    # The value itself is never printed; only where it lives.
    print(f"[intacct-connect] generated {name} in {path} (mode 0600) for the embedded configuration",
          file=sys.stderr)
    return value
