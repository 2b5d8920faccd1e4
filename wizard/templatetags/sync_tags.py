"""The connection page's sync section, as an inclusion tag so the connection view stays as it is."""
from django import template

from connector import objects
from wizard.records import sync_section_context

register = template.Library()


@register.inclusion_tag("wizard/records/_sync_section.html", takes_context=True)
def sync_section(context) -> dict:
    connection = context["connection"]
    return {"organisation": context["organisation"], "connection": connection, "can_write": context["can_write"],
            "csrf_token": context.get("csrf_token"), **sync_section_context(connection)}


@register.filter
def object_label(name: str) -> str:
    """An object's name as people read it ("Expense report batches", not "expensereportbatch")."""
    definition = objects.OBJECTS_BY_NAME.get(str(name).upper()) or objects.OBJECTS_BY_NAME.get(str(name))
    return definition.label if definition is not None else str(name)
