"""Which Intacct screen each wizard step shows a picture of, and what to outline on it (no Django here).

scripts/intacct_screens.py takes the pictures from the simulator's screens; the step pages show them with this
alt text and, in the demo, a link that opens the same screen in the simulator.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Screen:
    step: int
    path: str  # under the simulator's companies/<company>/
    selector: str  # the part to change, outlined
    alt: str


SCREENS: tuple[Screen, ...] = (
    Screen(1, "admin/subscriptions/", "#subscriptions-form",
           "Intacct's Subscriptions screen: the Web Services switch, outlined in red, is the one to turn on."),
    Screen(2, "setup/security/", "#ip-filter-form",
           "Intacct's Security screen: the IP address filters, outlined in red, where our addresses are added."),
    Screen(3, "setup/security/", "#add-sender-form",
           "Intacct's Web Services authorizations: the Sender ID box, outlined in red, where our Sender ID goes."),
    Screen(4, "setup/company-info/", "#company-info-form",
           "Intacct's Company Info, Global settings: the Permission type, outlined in red, says role- or "
           "user-based."),
    Screen(5, "admin/users/", "#create-user-form",
           "Intacct's Web Services users screen: the new user's form, outlined in red, filled in as the table "
           "below says."),
)
SCREENS_BY_STEP = {screen.step: screen for screen in SCREENS}


def picture_path(step: int) -> str | None:
    """The static path of a step's picture, or None for a step without one (6: our own page)."""
    return f"img/intacct/step-{step}.png" if step in SCREENS_BY_STEP else None
