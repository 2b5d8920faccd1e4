"""The wizard's tests: a simulated company set up as the wizard says (the people are in tests/conftest.py)."""
from __future__ import annotations


def simulated_company(company_id: str, *, permission_model: str = "role", role_name: str = "Connect API",
                      login_id: str = "ws_connect", password: str = "Sim-Passw0rd!",  # noqa: S107
                      deprovisioning: bool = False, skip_policies: tuple[str, ...] = ()):
    """A simulated Intacct company set up exactly as the wizard tells an admin to (simulator helpers)."""
    from django.conf import settings

    from connector.objects import permission_table
    from simulator import services as sim

    sim.settings_sender()
    company = sim.create_company(company_id, permission_model=permission_model)
    sim.authorize_sender(company, settings.INTACCT_SENDER_ID)
    permissions = [(row.application, row.policy,
                    "|".join(row.rights_for(wants_deprovisioning=deprovisioning)))
                   for row in permission_table() if row.policy not in skip_policies]
    admin = "Full" if deprovisioning else "Off"
    if permission_model == "role":
        role = sim.create_role(company, role_name, permissions)
        sim.create_user(company, login_id, first_name="Intacct Connect", last_name="Integration",
                        admin_privileges=admin, roles=[role], password=password)
    else:
        sim.create_user(company, login_id, first_name="Intacct Connect", last_name="Integration",
                        admin_privileges=admin, permissions=permissions, password=password)
    return company
