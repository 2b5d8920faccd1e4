"""The company request slots of connector/limits.py: a slot taken is always given back."""

from __future__ import annotations

import time

import pytest

from connector import limits
from connector.models import CompanySlot

pytestmark = pytest.mark.django_db


def held_slots(key: str) -> int:
    return CompanySlot.objects.filter(company_key=key).exclude(holder="").count()


def test_a_slot_given_back_for_a_block_and_taken_again_is_released_at_the_end():
    """A full read gives the object's slot back while its range readers run, then takes one again: once
    the object is done no slot may stay held (a leaked slot blocked the company's next object until its
    lease lapsed, ~75 s: seen in the fleet benchmark)."""
    with limits.holding_slot("ACME", 1):
        assert held_slots("ACME") == 1
        with limits.not_holding_slot("ACME"):
            assert held_slots("ACME") == 0
            with limits.holding_slot("ACME", 1):  # a range reader, in effect
                assert held_slots("ACME") == 1
        assert held_slots("ACME") == 1
    assert held_slots("ACME") == 0
    started = time.monotonic()
    slot_id, holder = limits.acquire("ACME", 1, wait=2)
    assert time.monotonic() - started < 1
    limits.release(slot_id, holder)


def test_nested_holding_of_the_same_company_takes_one_slot():
    with limits.holding_slot("ACME", 2), limits.holding_slot("ACME", 2):
        assert held_slots("ACME") == 1
    assert held_slots("ACME") == 0
