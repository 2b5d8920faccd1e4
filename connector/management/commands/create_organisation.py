"""manage.py create_organisation "Acme Ltd" --admin-username alice --admin-email alice@example.com"""
from __future__ import annotations

import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from connector import services
from connector.models import Organisation


class Command(BaseCommand):
    help = "Create an organisation and its first admin (an existing user, or a new one)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The organisation's name.")
        parser.add_argument("--slug", default="", help="URL name (default: made from the name).")
        parser.add_argument("--admin-username", required=True)
        parser.add_argument("--admin-email", default="")
        parser.add_argument("--admin-password", default=None,
                            help="For a new admin; prompted for when omitted and a terminal is attached.")

    def handle(self, *args, name, slug, admin_username, admin_email, admin_password, **options):
        if slug and Organisation.objects.filter(slug=slug).exists():
            raise CommandError(f"An organisation with the slug {slug!r} exists already.")
        User = get_user_model()
        admin = User.objects.filter(username=admin_username).first()
        if admin is None:
            if admin_password is None:
                if not self.stdin_is_tty():
                    raise CommandError("--admin-password is needed to create a new admin without a terminal.")
                admin_password = getpass.getpass(f"Password for {admin_username}: ")
            admin = services.user_create(username=admin_username, email=admin_email, password=admin_password)
            self.stdout.write(f"Created user {admin_username}.")
        organisation = services.organisation_create(name=name, slug=slug, admin=admin)
        self.stdout.write(self.style.SUCCESS(
            f"Created organisation {organisation.name} ({organisation.slug}) with admin {admin_username}."))

    @staticmethod
    def stdin_is_tty() -> bool:
        import sys

        return sys.stdin.isatty()
