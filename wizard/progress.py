"""Each wizard step's mark in the progress bar: what the latest validation found, else the admin's word.

A step is "passed" when the latest finished validation's checks for it all passed, "failed" when one of them
failed and named it, "done" when the admin pressed "I've done this" and no later check said otherwise, and
"open" otherwise (not checked yet). Step 6 (Connect) passes only with the whole validation.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from connector import diagnosis, objects
from connector.models import Connection, ValidationRun

PASSED, FAILED, DONE, OPEN = "passed", "failed", "done", "open"

# The checks that prove a step was done right (the read checks belong to step 4 or 5 by permission type).
_STEP_OF_CHECK = {
    "subscription": objects.STEP_SUBSCRIBE,
    "ip_address": objects.STEP_IP_FILTER,
    "sender_authorised": objects.STEP_SENDER,
    "permission_model": objects.STEP_PERMISSIONS,
    "login": objects.STEP_USER,
    "web_services_user": objects.STEP_USER,
}
_READ_KEYS = {diagnosis.read_check_key(definition) for definition in objects.OBJECTS}


@dataclass(frozen=True)
class StepMark:
    number: int
    mark: str

    @property
    def counts(self) -> bool:
        return self.mark in (PASSED, DONE)

    @property
    def symbol(self) -> str:
        return {PASSED: "✓", DONE: "✓", FAILED: "✗"}.get(self.mark, str(self.number))

    @property
    def words(self) -> str:
        return {PASSED: "checked: works", DONE: "marked done, not checked yet", FAILED: "the last check failed here",
                OPEN: "not done yet"}[self.mark]


def _check_step(key: str, permission_model: str) -> int | None:
    if key in _READ_KEYS:
        return objects.STEP_PERMISSIONS if permission_model == objects.ROLE_BASED else objects.STEP_USER
    return _STEP_OF_CHECK.get(key)


def step_marks(connection: Connection, step_numbers: tuple[int, ...]) -> dict[int, StepMark]:
    run: ValidationRun | None = connection.last_validation
    marks_done = connection.steps_done()
    verdicts: dict[int, str] = {}
    if run is not None and run.is_finished:
        model = connection.intacct_permission_model or connection.effective_permission_model
        failed: set[int] = set()
        results: dict[int, list[str]] = {}
        for check in run.checks.all():
            if check.status == check.Status.FAILED and check.wizard_step:
                failed.add(check.wizard_step)
            step = _check_step(check.key, model)
            if step is not None:
                results.setdefault(step, []).append(check.status)
        for number in step_numbers:
            if number in failed:
                verdicts[number] = FAILED
            elif results.get(number) and all(status == "passed" for status in results[number]):
                verdicts[number] = PASSED
        last = objects.STEP_CONNECT
        if run.status == ValidationRun.Status.PASSED:
            verdicts[last] = PASSED
        elif run.status == ValidationRun.Status.FAILED:
            verdicts[last] = FAILED
    marks = {}
    for number in step_numbers:
        verdict = verdicts.get(number)
        done = marks_done.get(number)
        # The admin's word stands until a check made after it says otherwise.
        if done is not None and (verdict is None or (verdict == FAILED and run.finished_at
                                                     and done.done_at > run.finished_at)):
            verdict = DONE
        marks[number] = StepMark(number, verdict or OPEN)
    return marks


def answers_version(connection: Connection) -> str:
    """A short fingerprint of every answer the wizard holds: a form posted from an older page is refused."""
    marks = ",".join(f"{mark.step}" for mark in connection.step_completions.order_by("step"))
    text = "|".join([connection.permission_model, str(connection.wants_deprovisioning), connection.company_id,
                     connection.user_id, connection.entity_id, str(connection.password_set_at or ""), marks])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
