"""The wizard's steps as facts: number, title and the Intacct menu path each one sends the admin to.

The one table that the wizard's pages (wizard.steps adds the explanations), validation's and diagnosis's
words, support's step links and e-mails all read, so a step renumbered or a menu renamed changes
everywhere at once.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepFacts:
    number: int                  # 1-based, the order the admin sees them
    title: str
    short: str                   # the progress bar's label
    menu_path: tuple[str, ...]   # where in Intacct the step is done; () when it is done on our page

    @property
    def menu(self) -> str:
        """The menu path as the admin reads it: "Company > Admin > Subscriptions"."""
        return " > ".join(self.menu_path)


SUBSCRIBE = StepFacts(1, "Subscribe to Web Services", "Subscribe", ("Company", "Admin", "Subscriptions"))
IP_FILTER = StepFacts(2, "IP address filter (optional)", "IP filter",
                      ("Company", "Setup", "Company", "Security", "IP address filters"))
SENDER = StepFacts(3, "Authorise our Sender ID", "Sender ID",
                   ("Company", "Setup", "Company", "Security", "Web Services authorizations"))
PERMISSIONS = StepFacts(4, "Permissions", "Permissions", ("Company", "Setup", "Company Info", "Permission type"))
USER = StepFacts(5, "Create the Web Services user", "Web Services user", ("Company", "Admin", "Web Services users"))
CONNECT = StepFacts(6, "Connect", "Connect", ())

STEPS: tuple[StepFacts, ...] = (SUBSCRIBE, IP_FILTER, SENDER, PERMISSIONS, USER, CONNECT)
assert [facts.number for facts in STEPS] == list(range(1, len(STEPS) + 1)), "steps are numbered 1, 2, 3 ..."


def step(number: int) -> StepFacts:
    """The facts of step `number` (1-based); IndexError for a step that does not exist."""
    if not 1 <= number <= len(STEPS):
        raise IndexError(f"no wizard step {number}")
    return STEPS[number - 1]
