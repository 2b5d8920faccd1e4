"""Idempotent demo data: the simulator's companies, a demo organisation, its admin and a support login."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from connector import services
from connector.models import Organisation

DEMO_ORGANISATION = ("Demo Organisation", "demo")
# Documented demo credentials (the embedded default only; demo_setup refuses to run in production).
DEMO_ADMIN = ("demo-admin", "demo-admin@example.com", "connect-demo-admin")
DEMO_SUPPORT = ("demo-support", "demo-support@example.com", "connect-demo-support")


class Command(BaseCommand):
    help = "Seed the simulator and create the demo organisation, demo admin and support logins."

    def handle(self, *args, **options):
        from django.conf import settings

        if settings.PRODUCTION:
            raise CommandError("demo_setup creates documented passwords: it does not run in production.")
        self._seed_simulator()
        admin = self._user(*DEMO_ADMIN)
        support = self._user(*DEMO_SUPPORT)
        services.support_staff_grant(user=support)
        name, slug = DEMO_ORGANISATION
        organisation = Organisation.objects.filter(slug=slug).first()
        if organisation is None:
            organisation = services.organisation_create(name=name, slug=slug, admin=admin)
        else:
            services.membership_add(organisation=organisation, user=admin)
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        self.stdout.write(f"  Organisation admin: username {DEMO_ADMIN[0]}  password {DEMO_ADMIN[2]}")
        self.stdout.write(f"  Support staff:      username {DEMO_SUPPORT[0]}  password {DEMO_SUPPORT[2]}")
        if settings.SIMULATOR_ENABLED:
            self.stdout.write("  Simulated Intacct:  /simulator/ "
                              "(company DEMO-CO is set up, NEW-CO is blank)")

    def _seed_simulator(self) -> None:
        try:
            call_command("simulator_seed", stdout=self.stdout, stderr=self.stderr)
        except CommandError as exc:
            if "Unknown command" not in str(exc):
                raise
            self.stdout.write("The simulator has no seed command yet: skipped.")

    def _user(self, username: str, email: str, password: str):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            return services.user_create(username=username, email=email, password=password)
        # Re-running the demo restores the documented password.
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        return user
