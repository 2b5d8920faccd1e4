"""Template helpers shared by every page: the product's name and copyable values."""
from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def product_name() -> str:
    return settings.PRODUCT_NAME


@register.inclusion_tag("wizard/_copy.html")
def copyable(value: str, label: str = "") -> dict:
    """A value in <code> (selectable without JavaScript) with a copy button that JavaScript reveals."""
    return {"value": value, "label": label or value}


@register.filter
def menu_path(parts) -> str:
    return " > ".join(parts)


@register.simple_tag
def signup_enabled() -> bool:
    return settings.SIGNUP_ENABLED
