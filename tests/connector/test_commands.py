from django.contrib.auth import get_user_model
from django.core.management import call_command

from connector.models import AuditEvent, Membership, Organisation
from wizard.access import is_support_staff


def test_create_organisation_with_a_new_admin(db, capsys):
    call_command("create_organisation", "Acme Ltd", "--admin-username", "alice",
                 "--admin-email", "a@acme.test", "--admin-password", "a long enough password")
    organisation = Organisation.objects.get(slug="acme-ltd")
    membership = Membership.objects.get(organisation=organisation)
    assert membership.user.username == "alice" and membership.role == "org_admin"
    assert membership.user.check_password("a long enough password")
    assert organisation.connection.status == "not_started"
    assert AuditEvent.objects.filter(organisation=organisation, action="organisation.created").exists()
    assert "a long enough password" not in capsys.readouterr().out


def test_demo_setup_is_idempotent_and_prints_the_demo_logins(db, capsys):
    call_command("demo_setup")
    call_command("demo_setup")
    out = capsys.readouterr().out
    assert "username demo-admin  password connect-demo-admin" in out
    User = get_user_model()
    admin, support = User.objects.get(username="demo-admin"), User.objects.get(username="demo-support")
    assert Organisation.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(user=admin, organisation__slug="demo").count() == 1
    assert is_support_staff(support) and not is_support_staff(admin)
    assert admin.check_password("connect-demo-admin")
    from simulator.models import SimCompany

    assert SimCompany.objects.filter(company_id__in=["DEMO-CO", "NEW-CO"]).count() == 2
