"""What support staff do for an organisation beyond looking: send its admins a link to a wizard step."""
from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from connector import services, steps
from connector.models import Connection, Membership


def step_link_send(*, connection: Connection, step: int, by, ip: str | None = None) -> int:
    """E-mail the organisation's admins a link straight to wizard step `step`; returns how many got it."""
    organisation = connection.organisation
    admins = [m.user for m in Membership.objects.filter(organisation=organisation, role=Membership.ORG_ADMIN)
              .select_related("user") if m.user.email]
    link = settings.SITE_URL.rstrip("/") + reverse("setup_step", args=[organisation.slug, step])
    title = steps.step(step).title
    if admins:
        send_mail(
            subject=f"{settings.PRODUCT_NAME}: please look at step {step}, {title}",
            message=(f"Hello,\n\nOur support team looked at {organisation.name}'s Sage Intacct connection and "
                     f"asks you to revisit step {step} of the setup, \"{title}\":\n\n{link}\n\n"
                     f"Sign in with your usual login. Nobody will ever ask you for the password by e-mail.\n\n"
                     f"— {settings.PRODUCT_NAME} support\n"),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email for user in admins],
        )
    services.audit_record(organisation=organisation, connection=connection, action="support.step_link_sent",
                          user=by, ip=ip, details={"step": step, "recipients": [u.get_username() for u in admins]})
    return len(admins)
