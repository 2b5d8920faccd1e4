"""Re-encrypt every stored secret under the newest key in FIELD_ENCRYPTION_KEYS.

Put the new key first in FIELD_ENCRYPTION_KEYS, keep the old ones after it, run this command, and only
then remove the old keys: until then tokens made under them still decrypt.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from connector import crypto, services


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        try:
            count = services.encryption_keys_rotate()
        except crypto.InvalidToken as exc:
            raise CommandError("A stored secret cannot be decrypted with any configured key: keep "
                               "the old key in FIELD_ENCRYPTION_KEYS until the rotation has run.") from exc
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secret(s) under the newest key."))
