"""Create the simulator's demo companies (idempotent); --reset rebuilds them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from simulator.demo import DEMO_LOGIN, DEMO_PASSWORD, SEED_COMPANIES, build_company
from simulator.models import SimCompany
from simulator.oauth import settings_rest_app
from simulator.services import settings_sender


class Command(BaseCommand):
    help = "Seed the Intacct simulator: our sender, DEMO-CO, NEW-CO and companies wrong in one way each."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--reset", action="store_true", help="Delete and rebuild the seeded companies.")

    def handle(self, *args: Any, **options: Any) -> None:
        settings_sender()
        settings_rest_app()
        names = [name for name, _, _ in SEED_COMPANIES]
        if options["reset"]:
            SimCompany.objects.filter(company_id__in=names).delete()
        created = 0
        for name, _, kwargs in SEED_COMPANIES:
            if not SimCompany.objects.filter(company_id=name).exists():
                build_company(name, **kwargs)
                created += 1
        self.stdout.write(f"Sender ID: {settings.INTACCT_SENDER_ID} (password from INTACCT_SENDER_PASSWORD)")
        self.stdout.write(f"REST application: {settings.INTACCT_REST_CLIENT_ID} "
                          f"(redirect URI {settings.INTACCT_REST_REDIRECT_URI})")
        self.stdout.write(f"User ID: {DEMO_LOGIN}   Password: {DEMO_PASSWORD}   (every company except NEW-CO)")
        self.stdout.write(
            f"{created} compan{'y' if created == 1 else 'ies'} created, {len(names) - created} already present.\n"
        )
        width = max(len(n) for n in names)
        self.stdout.write(f"{'Company ID'.ljust(width)}  What is special")
        self.stdout.write(f"{'-' * width}  {'-' * 60}")
        for name, description, _ in SEED_COMPANIES:
            self.stdout.write(f"{name.ljust(width)}  {description}")
