"""What each wizard step says: why, and the common mistake to avoid, beside its facts from connector.steps.

The "Common mistakes" lines come from the project's field notes (what real integrations get wrong).
"""
from __future__ import annotations

from dataclasses import dataclass

from connector import steps as facts
from connector.steps import StepFacts


@dataclass(frozen=True)
class Step:
    facts: StepFacts
    why: str
    mistakes: str

    @property
    def number(self) -> int:
        return self.facts.number

    @property
    def title(self) -> str:
        return self.facts.title

    @property
    def short(self) -> str:
        return self.facts.short

    @property
    def menu_path(self) -> tuple[str, ...]:
        return self.facts.menu_path


STEPS: tuple[Step, ...] = (
    Step(
        facts.SUBSCRIBE,
        why=("Intacct only answers programs through its Web Services gateway, and only for companies "
             "subscribed to it. Without the subscription we cannot read anything, however right the "
             "other settings are."),
        mistakes=("Leaving it off and then reading the error as a password problem: Intacct reuses one "
                  "error code for a missing subscription, a wrong sender and a wrong sign-in."),
    ),
    Step(
        facts.IP_FILTER,
        why=("If your company restricts sign-ins to a list of IP addresses, our servers must be on the "
             "list, or Intacct refuses every request we make."),
        mistakes=("Adding only one of our addresses: requests then fail some of the time, from whichever "
                  "server is not on the list. Skip this step if your company has no IP filter."),
    ),
    Step(
        facts.SENDER,
        why=("Every program that talks to Intacct identifies itself with a Sender ID. Intacct accepts "
             "requests from a Sender ID only for companies that authorised it."),
        mistakes=("Typing the Sender ID with different capitals (it is case-sensitive), or leaving "
                  "\"Needs login for API\" switched on for it: then every call fails."),
    ),
    Step(
        facts.PERMISSIONS,
        why=("Intacct checks a permission for every kind of record we read. Your company gives "
             "permissions either through roles or to each user directly; the next steps depend on which."),
        mistakes=("Putting the permissions on a role that is not the one assigned to the Web Services "
                  "user: sign-in still works, but every read fails with \"You do not have permission\". "
                  "One public project was stuck six weeks on exactly this."),
    ),
    Step(
        facts.USER,
        why=("We sign in as a dedicated Web Services user, so nobody's personal login is shared and its "
             "password never expires (only an administrator's reset changes it)."),
        mistakes=("Using an ordinary user instead of a Web Services user: its password must be reset every "
                  "90 days and the connection breaks each time. Also: an administrator resetting the Web "
                  "Services user's password later breaks the connection until you enter the new one here."),
    ),
    Step(
        facts.CONNECT,
        why=("We check every setting from the previous steps in a few seconds, and tell you exactly which "
             "step to revisit if something is not right yet."),
        mistakes=("Pasting the company ID with a trailing space, or typing the user's e-mail address "
                  "instead of its user ID. We catch both before anything is sent."),
    ),
)

STEP_NUMBERS = tuple(step.number for step in STEPS)
LAST_STEP = STEPS[-1].number


def step(number: int) -> Step:
    return STEPS[number - 1]
