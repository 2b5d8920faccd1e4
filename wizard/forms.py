"""Plain forms. They validate input only: never the network, never the database."""
from __future__ import annotations

import re
import unicodedata
from zoneinfo import available_timezones

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator

from connector.objects import ROLE_BASED, USER_BASED

ID_PATTERN = re.compile(r"^[^\s@]+$")
ID_INPUT_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"}


def has_control_characters(value: str) -> bool:
    """Control characters (tabs and newlines included): never part of an ID, a name or a password."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def has_invisible_characters(value: str) -> bool:
    """Control or format characters (zero-width spaces, direction marks...), often pasted from a web page."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def no_invisible_characters(value: str) -> None:
    if has_invisible_characters(value):
        raise forms.ValidationError("This contains an invisible or control character, probably pasted with it. "
                                    "Type it again, or paste it as plain text.")


def no_control_characters(value: str) -> None:
    if has_control_characters(value):
        raise forms.ValidationError("This contains a control character (a tab, a line break or similar). "
                                    "Type it again on one line.")


class PasswordField(forms.CharField):
    """A secret input: never re-rendered (render_value=False) and kept out of error messages."""

    default_error_messages = {
        # Intacct could not even receive it: XML cannot carry most control characters.
        "control": "The password contains a control character, probably pasted with it. Paste it again "
                   "without the line break or tab around it.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
        super().__init__(strip=True, **kwargs)

    def validate(self, value):
        super().validate(value)
        if value and has_control_characters(value):
            raise forms.ValidationError(self.error_messages["control"], code="control")


class CompanyIdField(forms.CharField):
    """Intacct company ID: trimmed, with a note when we trimmed something."""

    default_validators = [no_invisible_characters]

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
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS), validators=[no_invisible_characters],
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
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS), validators=[no_invisible_characters],
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

    def __init__(self, *args, entity_box: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not entity_box:
            # The entities are known: the picker below the form chooses one, nothing to type.
            del self.fields["entity_id"]

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
        validators=[no_invisible_characters],
    )

    def clean_entity_id(self) -> str:
        return _clean_entity(self.cleaned_data["entity_id"])


TOP_LEVEL = "__top__"  # the radio of "Top level": an empty value would read as "nothing chosen"


class EntityPickerForm(forms.Form):
    """Top level or one of the entities Intacct listed (replaces the typed entity ID once they are known)."""

    entity_id = forms.ChoiceField(
        label="Entity to connect to", widget=forms.RadioSelect,
        error_messages={"required": "Choose the top level or one entity.",
                        "invalid_choice": "That entity is not one Intacct listed: choose one of these."},
    )

    def __init__(self, *args, entities: list[dict[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entity_id"].choices = [(TOP_LEVEL, "Top level (all entities)")] + [
            (e["id"], f"{e['id']}: {e['name']}" if e.get("name") and e["name"] != e["id"] else e["id"])
            for e in entities]

    def clean_entity_id(self) -> str:
        value = self.cleaned_data["entity_id"]
        return "" if value == TOP_LEVEL else value


def entity_picker(connection, data=None) -> EntityPickerForm | None:
    """The picker for a connection whose entities Intacct listed, else None (the typed box stays)."""
    if not connection.intacct_entities:
        return None
    return EntityPickerForm(data, entities=connection.intacct_entities,
                            initial={"entity_id": connection.entity_id or TOP_LEVEL})


class PermissionModelForm(forms.Form):
    permission_model = forms.ChoiceField(
        label="Your company's permission type",
        choices=[(ROLE_BASED, "Role-based"), (USER_BASED, "User-based")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose role-based or user-based."},
    )


class DeprovisioningForm(forms.Form):
    wants_deprovisioning = forms.BooleanField(label="I want user deprovisioning", required=False)


class HandOffForm(forms.Form):
    name = forms.CharField(label="Their name", max_length=200, validators=[no_control_characters],
                           error_messages={"required": "Enter the name of the person who will do the steps."})
    email = forms.EmailField(label="Their e-mail address (optional: or copy the link yourself)", required=False)


class SignupForm(forms.Form):
    organisation_name = forms.CharField(label="Organisation name", max_length=200,
                                        validators=[no_control_characters])
    username = forms.CharField(label="Username", max_length=150, validators=[UnicodeUsernameValidator()],
                               help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(label="E-mail address")
    password = PasswordField(label="Password", max_length=200)

    def clean_username(self) -> str:
        # Stored as Django stores it (create_user normalises with NFKC): "ａｌｉｃｅ" is a copy of "alice".
        username = AbstractBaseUser.normalize_username(self.cleaned_data["username"])
        if len(username) > 150:  # NFKC can lengthen a name ("ﷺ" is 18 letters)
            raise forms.ValidationError("That username is too long once normalised; choose a shorter one.")
        UnicodeUsernameValidator()(username)
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


# --- REST ---------------------------------------------------------------------------

PROTOCOL_CHOICES = [
    ("rest", "Connect with Sage Intacct (recommended): sign in to Intacct as an admin and approve our application"),
    ("xml", "Web Services user and password (XML gateway), as before"),
]


class ProtocolForm(forms.Form):
    protocol = forms.ChoiceField(label="How should we connect?", choices=PROTOCOL_CHOICES, widget=forms.RadioSelect,
                                 error_messages={"required": "Choose how to connect."})


def _timezone_choices() -> list[tuple[str, str]]:
    return [("", "Choose the company's time zone")] + [(name, name) for name in sorted(available_timezones())]


class TimezoneField(forms.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            label="Company time zone", choices=_timezone_choices,
            help_text="As set in Intacct (Company > Setup > Company Info). Intacct's REST API gives times in UTC; "
                      "we keep them in your company's time, as the XML gateway gives them.",
            error_messages={"required": "Choose the time zone your Intacct company is set to."}, **kwargs)


class RestCodeForm(forms.Form):
    """'Connect with Sage Intacct': what we need before sending the admin to Intacct's sign-in page."""

    company_id = CompanyIdField(
        label="Company ID", max_length=100,
        help_text="The company ID you type on Intacct's sign-in page (not the company's name).",
        error_messages={"required": "Enter your Intacct company ID."},
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS),
    )
    company_timezone = TimezoneField()

    def clean_company_id(self) -> str:
        value = self.cleaned_data["company_id"]
        if any(ch.isspace() for ch in value) or "@" in value or "|" in value:
            raise forms.ValidationError("A company ID has no spaces, '@' or '|' in it. Copy it from Intacct's "
                                        "sign-in page.")
        return value


class RestClientCredentialsForm(RestCodeForm):
    """REST with a Web Services user (client credentials): user@company, |entity for one entity."""

    user_id = forms.CharField(
        label="User ID", max_length=100,
        help_text="The Web Services user's ID from step 5, for example ws_connect (not an e-mail address). No "
                  "password: our application's own credentials are used with it.",
        error_messages={"required": "Enter the Web Services user's user ID."},
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS), validators=[no_invisible_characters],
    )
    entity_id = forms.CharField(
        label="Entity ID (optional)", max_length=100, required=False,
        help_text="Only for multi-entity companies that should connect to one entity. Leave empty for the top level.",
        widget=forms.TextInput(attrs=ID_INPUT_ATTRS), validators=[no_invisible_characters],
    )
    field_order = ["company_id", "user_id", "entity_id", "company_timezone"]

    def clean_user_id(self) -> str:
        value = self.cleaned_data["user_id"]
        if "@" in value:
            raise forms.ValidationError(
                "That looks like an e-mail address. Enter the Web Services user's user ID instead (for example "
                "ws_connect).")
        if not ID_PATTERN.match(value) or "|" in value:
            raise forms.ValidationError("A user ID has no spaces. Copy it from Company > Admin > Web Services users.")
        return value

    def clean_entity_id(self) -> str:
        value = self.cleaned_data["entity_id"].strip()
        if value and (not ID_PATTERN.match(value) or "|" in value):
            raise forms.ValidationError("An entity ID has no spaces, '@' or '|' in it.")
        return value
