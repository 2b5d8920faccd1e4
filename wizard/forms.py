"""Plain forms. They validate input only: never the network, never the database."""
from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password

from connector.objects import ROLE_BASED, USER_BASED

ID_PATTERN = re.compile(r"^[^\s@]+$")
ID_INPUT_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}


class PasswordField(forms.CharField):
    """A secret input: never re-rendered (render_value=False) and kept out of error messages."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
        super().__init__(strip=True, **kwargs)


class CompanyIdField(forms.CharField):
    """Intacct company ID: trimmed, with a note when we trimmed something."""

    def clean(self, value):
        self.trimmed = isinstance(value, str) and value != value.strip()
        return super().clean(value)


def _clean_entity(value: str) -> str:
    if value and not ID_PATTERN.match(value):
        raise forms.ValidationError("An entity ID has no spaces. Copy it from Company > Setup > Entities, "
                                    "or leave the box empty to connect at the top level.")
    return value


class ConnectForm(forms.Form):
    company_id = CompanyIdField(
        label="Company ID", max_length=100,
        help_text="The company ID you type on Intacct's sign-in page (not the company's name).",
        error_messages={"required": "Enter your Intacct company ID."},
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS),
    )
    user_id = forms.CharField(
        label="User ID", max_length=100,
        help_text="The Web Services user's ID from step 5, for example ws_connect (not an e-mail address).",
        error_messages={"required": "Enter the Web Services user's user ID."},
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS),
    )
    password = PasswordField(
        label="Password", max_length=200,
        help_text="The password Intacct e-mailed when you created the Web Services user.",
        error_messages={"required": "Enter the password Intacct e-mailed to the Web Services user's "
                                    "address."},
    )
    entity_id = forms.CharField(
        label="Entity ID (optional)", max_length=100, required=False,
        help_text="Only for multi-entity companies that should connect to one entity. Leave empty for the "
                  "top level.",
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS),
    )

    @property
    def company_id_trimmed(self) -> bool:
        return getattr(self.fields["company_id"], "trimmed", False)

    def clean_company_id(self) -> str:
        value = self.cleaned_data["company_id"]
        if any(ch.isspace() for ch in value):
            raise forms.ValidationError("A company ID has no spaces inside it. Copy it from Intacct's "
                                        "sign-in page.")
        return value

    def clean_user_id(self) -> str:
        value = self.cleaned_data["user_id"]
        if "@" in value:
            raise forms.ValidationError(
                "That looks like an e-mail address. Enter the Web Services user's user ID instead (for "
                "example ws_connect): the e-mail address is only where Intacct sent the password.")
        if not ID_PATTERN.match(value):
            raise forms.ValidationError("A user ID has no spaces. Copy it from Company > Admin > "
                                        "Web Services users.")
        return value

    def clean_entity_id(self) -> str:
        return _clean_entity(self.cleaned_data["entity_id"])


class PasswordChangeForm(forms.Form):
    password = PasswordField(
        label="New password", max_length=200,
        help_text="The new password Intacct e-mailed after an administrator reset it.",
        error_messages={"required": "Enter the new password Intacct e-mailed."},
    )


class EntityForm(forms.Form):
    entity_id = forms.CharField(
        label="Entity ID", max_length=100, required=False,
        help_text="Leave empty to connect at the top level of a multi-entity company.",
    )

    def clean_entity_id(self) -> str:
        return _clean_entity(self.cleaned_data["entity_id"])


class PermissionModelForm(forms.Form):
    permission_model = forms.ChoiceField(
        label="Your company's permission type",
        choices=[(ROLE_BASED, "Role-based"), (USER_BASED, "User-based")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose role-based or user-based."},
    )


class DeprovisioningForm(forms.Form):
    wants_deprovisioning = forms.BooleanField(label="I want user deprovisioning", required=False)


class SignupForm(forms.Form):
    organisation_name = forms.CharField(label="Organisation name", max_length=200)
    username = forms.CharField(label="Username", max_length=150)
    email = forms.EmailField(label="E-mail address")
    password = PasswordField(label="Password", max_length=200)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            user = get_user_model()(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                validate_password(cleaned["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned
