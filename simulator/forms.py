"""Plain forms of the simulator's admin screens (validation only; views do the saving)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from zoneinfo import available_timezones

from django import forms

from simulator.faults import FAULT_KINDS, MAX_COUNT, MAX_DELAY_MS, MAX_SEED
from simulator.models import (
    ADMIN_PRIVILEGES,
    LOGIN_FAILURE_STYLES,
    PERMISSION_MODELS,
    USER_STATUSES,
    USER_TYPES,
)

COMPANY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def no_control_characters(value: str) -> None:
    """Names and IDs are one line of visible text (a pasted tab or NUL is refused, not stored)."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise forms.ValidationError("Control characters (tabs, line breaks...) are not allowed here.")


class CompanyCreateForm(forms.Form):
    company_id = forms.CharField(label="Company ID", max_length=64)
    name = forms.CharField(label="Company name", max_length=200, required=False, validators=[no_control_characters])

    def clean_company_id(self) -> str:
        value = self.cleaned_data["company_id"].strip()
        if not COMPANY_ID.match(value):
            raise forms.ValidationError("A company ID is letters, digits, dots, dashes and underscores only.")
        from simulator.models import SimCompany

        if SimCompany.objects.filter(company_id__iexact=value).exists():
            raise forms.ValidationError("A company with this ID already exists.")
        return value


class SubscriptionForm(forms.Form):
    web_services_subscribed = forms.BooleanField(label="Web Services", required=False)

    def __init__(self, *args, applications: Iterable[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.applications = list(applications)
        for index, application in enumerate(self.applications):
            self.fields[f"app_{index}"] = forms.BooleanField(label=application, required=False)

    def unsubscribed(self) -> list[str]:
        """The applications left unticked."""
        return [a for i, a in enumerate(self.applications) if not self.cleaned_data.get(f"app_{i}")]


class IPFilterForm(forms.Form):
    ip_filter_enabled = forms.BooleanField(label="Enforce IP address filters", required=False)
    allowed_ips = forms.CharField(
        label="Allowed IP addresses (one per line; CIDR ranges allowed)",
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
    )

    def clean_allowed_ips(self) -> list[str]:
        values = [line.strip() for line in self.cleaned_data["allowed_ips"].splitlines() if line.strip()]
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise forms.ValidationError(f"{value} is not an IP address or range.") from exc
        return values


class SenderAuthorizationForm(forms.Form):
    sender_id = forms.CharField(label="Sender ID (case-sensitive)", max_length=128, strip=False,
                                validators=[no_control_characters])
    needs_login_for_api = forms.BooleanField(label="Needs login for API", required=False)

    def clean_sender_id(self) -> str:
        value = self.cleaned_data["sender_id"]
        if not value.strip():
            raise forms.ValidationError("Enter a sender ID.")
        return value


class CompanyInfoForm(forms.Form):
    permission_model = forms.ChoiceField(label="Permission type", choices=PERMISSION_MODELS)
    session_lifetime_seconds = forms.IntegerField(label="Session duration (seconds)", min_value=60)
    concurrency_limit = forms.IntegerField(label="Concurrent API requests allowed", min_value=1, max_value=100)
    concurrency_queue_seconds = forms.FloatField(
        label="Queue: seconds a request waits for a slot before 429 (0: none)", min_value=0, max_value=600,
        required=False,
    )
    monthly_api_quota = forms.IntegerField(
        label="API transactions included per month (0: none set)", min_value=0, max_value=10**9, required=False
    )
    login_failure_style = forms.ChoiceField(label="Wrong login answered as", choices=LOGIN_FAILURE_STYLES)
    timezone_name = forms.CharField(label="Time zone", max_length=64)

    def clean_concurrency_queue_seconds(self) -> float:
        return self.cleaned_data.get("concurrency_queue_seconds") or 0.0

    def clean_monthly_api_quota(self) -> int:
        return self.cleaned_data.get("monthly_api_quota") or 0

    def clean_timezone_name(self) -> str:
        value = self.cleaned_data["timezone_name"].strip()
        if value not in available_timezones():
            raise forms.ValidationError("Unknown time zone.")
        return value


class RoleForm(forms.Form):
    name = forms.CharField(label="Role name", max_length=100, validators=[no_control_characters])
    description = forms.CharField(label="Description", max_length=200, required=False,
                                  validators=[no_control_characters])


class UserForm(forms.Form):
    login_id = forms.CharField(label="User ID", max_length=64, validators=[no_control_characters])
    first_name = forms.CharField(label="First name", max_length=100, validators=[no_control_characters])
    last_name = forms.CharField(label="Last name", max_length=100, validators=[no_control_characters])
    email = forms.EmailField(label="Email address")
    user_type = forms.ChoiceField(label="User type", choices=USER_TYPES)
    admin_privileges = forms.ChoiceField(label="Admin privileges", choices=ADMIN_PRIVILEGES)
    status = forms.ChoiceField(label="Status", choices=USER_STATUSES)
    is_web_services_user = forms.BooleanField(label="Web services only", required=False, initial=True)


class LoginSettingsForm(forms.Form):
    lockout_threshold = forms.IntegerField(
        label="Failed sign-in attempts before the user is locked out (0: never)", min_value=0, max_value=100
    )


class EntityForm(forms.Form):
    entity_id = forms.CharField(label="Entity ID", max_length=64, validators=[no_control_characters])
    name = forms.CharField(label="Entity name", max_length=200, required=False, validators=[no_control_characters])

    def clean_entity_id(self) -> str:
        value = self.cleaned_data["entity_id"].strip()
        if not COMPANY_ID.match(value):
            raise forms.ValidationError("An entity ID is letters, digits, dots, dashes and underscores only.")
        return value


class SenderForm(forms.Form):
    sender_id = forms.CharField(label="Sender ID (case-sensitive)", max_length=128, strip=False,
                                validators=[no_control_characters])
    password = forms.CharField(label="Sender password", max_length=128, widget=forms.PasswordInput, strip=False)

    def clean_sender_id(self) -> str:
        value = self.cleaned_data["sender_id"]
        if not value.strip() or value != value.strip():
            raise forms.ValidationError("Enter a sender ID without leading or trailing spaces.")
        return value


class UserEditForm(forms.Form):
    user_type = forms.ChoiceField(label="User type", choices=USER_TYPES)
    admin_privileges = forms.ChoiceField(label="Admin privileges", choices=ADMIN_PRIVILEGES)
    status = forms.ChoiceField(label="Status", choices=USER_STATUSES)
    is_web_services_user = forms.BooleanField(label="Web services only", required=False)


class FaultForm(forms.Form):
    kind = forms.ChoiceField(label="Fault", choices=list(FAULT_KINDS.items()))
    mode = forms.ChoiceField(
        label="Applies to",
        choices=[("count", "The next N requests"), ("rate", "Each request with probability")],
    )
    count = forms.IntegerField(label="N (requests)", min_value=1, max_value=MAX_COUNT, required=False, initial=1,
                               error_messages={"max_value": f"N can be at most {MAX_COUNT} requests."})
    rate = forms.FloatField(label="Probability (0-1)", min_value=0.0001, max_value=1, required=False)
    delay_ms = forms.IntegerField(
        label="Delay (ms, slow responses)", min_value=0, max_value=MAX_DELAY_MS, initial=2000,
        help_text=f"0 to {MAX_DELAY_MS} ms (one minute).",
        error_messages={"max_value": f"The delay can be at most {MAX_DELAY_MS} ms (one minute).",
                        "min_value": "The delay must be at least 0 ms."})
    status = forms.TypedChoiceField(
        label="HTTP status (5xx)",
        coerce=int,
        initial=503,
        choices=[(500, "500"), (502, "502"), (503, "503"), (504, "504")],
    )
    seed = forms.IntegerField(label="Random seed", initial=0, min_value=0, max_value=MAX_SEED,
                              error_messages={"max_value": f"The seed must be at least 0 and at most {MAX_SEED}.",
                                              "min_value": f"The seed must be at least 0 and at most {MAX_SEED}."})

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("mode") == "count" and not data.get("count"):
            self.add_error("count", "Enter how many requests.")
        if data.get("mode") == "rate" and not data.get("rate"):
            self.add_error("rate", "Enter a probability.")
        return data
