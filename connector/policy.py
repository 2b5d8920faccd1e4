"""The one error policy: from the client's typed errors, what every caller does next.

Validation, sync, deprovisioning and monitoring all ask :func:`action_for`; none keeps a list of its own.

- ``RETRY``: nothing is known to be wrong with the company's setup; try again later (rate limits, outages,
  timeouts, dropped connections, an unreadable answer to a read, the company's request slots all taken, an
  expired session whose re-login failed for a transient reason, a worker without the encryption key).
- ``STOP``: the sign-in itself was refused (control or authentication level: sender, company, subscription, IP
  filter, sender authorisation, user, entity, expired company). Nothing else can succeed; tell the admin.
- ``FAIL_OBJECT``: one function was refused (permission, unknown object, a business rule, an odd answer to one
  read): that object fails, the others go on.
- ``INTERNAL``: not an Intacct error at all — a bug of ours. The run ends "failed" naming it; logged with its
  traceback and counted.
"""
from __future__ import annotations

import enum

from connector import crypto, limits
from connector.intacct import errors


class Action(enum.StrEnum):
    RETRY = "retry"
    STOP = "stop"
    FAIL_OBJECT = "fail_object"
    INTERNAL = "internal"


class KeyUnavailable(Exception):
    """This process cannot decrypt a stored password (a key rotation is half deployed)."""


# Refusals of the request as a whole: the sign-in or the request's envelope, before any function ran.
_REQUEST_LEVELS = frozenset({"control", "authentication"})


def action_for(exc: BaseException | None) -> Action:
    """What to do after ``exc`` (see the module's docstring)."""
    if exc is None:
        return Action.INTERNAL
    if isinstance(exc, (limits.SlotTimeout, KeyUnavailable, crypto.InvalidToken)):
        return Action.RETRY
    if not isinstance(exc, errors.IntacctError):
        return Action.INTERNAL
    if not exc.permanent:
        return Action.RETRY
    if isinstance(exc, errors.EndpointNotAllowed) or exc.level in _REQUEST_LEVELS:
        return Action.STOP
    if isinstance(exc, errors.LoginFailed):
        return Action.STOP  # HTTP 401 XMLGW_JPP0002 arrives at the http level
    return Action.FAIL_OBJECT


def is_transient(exc: BaseException | None) -> bool:
    """True when trying again later may succeed with nothing changed on the company's side."""
    return exc is not None and action_for(exc) == Action.RETRY


def is_sign_in_refusal(exc: BaseException | None) -> bool:
    return exc is not None and action_for(exc) == Action.STOP
