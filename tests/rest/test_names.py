"""The REST naming of every object we sync: complete for the fields we read, and the simulator names them alike."""
from __future__ import annotations

import pytest

from connector.intacct_rest import REST_NAMES, rest_name
from connector.objects import OBJECTS
from simulator.rest_objects import REST_OBJECTS


@pytest.mark.parametrize("definition", OBJECTS, ids=lambda d: d.name)
def test_every_synced_object_and_field_has_a_rest_name(definition):
    name = rest_name(definition.name)
    assert name is not None, f"{definition.name} has no REST path"
    rest_fields = name.rest_fields(definition.fields)
    assert len(rest_fields) == len(set(rest_fields)), "two XML fields under one REST name"
    assert name.fields["RECORDNO"] == "key" and name.fields["WHENMODIFIED"] == "audit.modifiedDateTime"


@pytest.mark.parametrize("xml_name", sorted(REST_NAMES))
def test_the_simulator_serves_each_object_under_the_same_names(xml_name):
    ours = REST_NAMES[xml_name]
    theirs = REST_OBJECTS[ours.path]
    assert theirs.xml_name == xml_name
    for xml_field, rest in ours.fields.items():
        assert theirs.fields[rest] == xml_field, f"{ours.path}.{rest}"
