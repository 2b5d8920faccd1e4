from cryptography.fernet import Fernet
from django.core.management import call_command

from connector import crypto, services
from connector.models import Connection


def test_round_trip_and_token_hides_plaintext(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = crypto.encrypt("s3cret-Pässword")
    assert "s3cret" not in token
    assert crypto.decrypt(token) == "s3cret-Pässword"


def test_old_key_still_decrypts_after_a_new_key_is_put_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("pw")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "pw"


def test_rotate_command_re_encrypts_every_secret_under_the_newest_key(db, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    passwords = {}
    for n in range(3):
        organisation = services.organisation_create(name=f"Org {n}")
        connection = organisation.connection
        connection.password_token = crypto.encrypt(f"password-{n}")
        connection.save()
        passwords[connection.id] = f"password-{n}"
    services.organisation_create(name="No secret yet")  # an empty token is left alone
    before = dict(Connection.objects.values_list("id", "password_token"))

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key removed: everything must still decrypt
    for connection in Connection.objects.exclude(password_token=""):
        assert connection.password_token != before[connection.id]
        assert crypto.decrypt(connection.password_token) == passwords[connection.id]
    assert Connection.objects.filter(password_token="").count() == 1


def test_rotate_command_refuses_when_a_secret_cannot_be_read(db, settings, capsys):
    import pytest
    from django.core.management.base import CommandError

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    organisation = services.organisation_create(name="Org")
    Connection.objects.filter(id=organisation.connection.id).update(password_token=crypto.encrypt("pw"))
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="keep the old key"):
        call_command("rotate_encryption_keys")
