"""What the wizard's pages say: copy values, the generated permission table, the branches."""
from __future__ import annotations

from django.urls import reverse

from connector import objects


def step(client, number):
    return client.get(reverse("setup_step", args=["acme", number])).content.decode()


def test_every_step_has_why_common_mistakes_progress_and_navigation(admin_client):
    for number in range(1, 7):
        html = step(admin_client, number)
        assert "Why?" in html and "Common mistakes" in html
        assert 'aria-current="step"' in html and 'role="progressbar"' in html
        if number > 1:
            assert reverse("setup_step", args=["acme", number - 1]) in html
        if number < 6:
            assert reverse("setup_step", args=["acme", number + 1]) in html


def test_menu_paths_ip_addresses_and_sender_id(admin_client, settings):
    settings.OUTBOUND_IP_ADDRESSES = ["203.0.113.7", "203.0.113.8"]
    settings.INTACCT_SENDER_ID = "OurSender"
    assert "Company &gt; Admin &gt; Subscriptions" in step(admin_client, 1)
    html = step(admin_client, 2)
    assert 'data-copy="203.0.113.7"' in html and 'data-copy="203.0.113.8"' in html
    html = step(admin_client, 3)
    assert 'data-copy="OurSender"' in html and "case-sensitive" in html.lower()
    assert "Company &gt; Setup &gt; Company &gt; Security &gt; Web Services authorizations" in html
    assert "Company &gt; Setup &gt; Company Info &gt; Permission type" in step(admin_client, 4)


def test_role_based_branch_shows_the_generated_table_in_step_4(admin_client, settings):
    settings.SUGGESTED_ROLE_NAME = "Connect API"
    admin_client.post(reverse("setup_step", args=["acme", 4]),
                      {"action": "permission_model", "permission_model": "role"})
    html = step(admin_client, 4)
    for row in objects.permission_table():
        assert f"<th scope=\"row\">{row.policy}</th>" in html
    assert 'data-copy="Connect API"' in html
    assert "Edit: not needed" in html
    assert "Roles" in step(admin_client, 5) and "Permissions</h2>" not in step(admin_client, 5)


def test_user_based_branch_moves_the_table_to_step_5(admin_client):
    admin_client.post(reverse("setup_step", args=["acme", 4]),
                      {"action": "permission_model", "permission_model": "user"})
    assert "Credit Card Transactions" not in step(admin_client, 4)
    html = step(admin_client, 5)
    assert "Credit Card Transactions" in html and "Expense Summaries" in html
    assert "<th scope=\"row\">Roles</th>" not in html


def test_deprovisioning_toggle_makes_edit_and_admin_full_required(organisation, admin_client):
    admin_client.post(reverse("setup_step", args=["acme", 4]),
                      {"action": "permission_model", "permission_model": "user"})
    html = step(admin_client, 5)
    assert "Full only if you want deprovisioning" in html and "Edit: not needed" in html
    admin_client.post(reverse("setup_step", args=["acme", 5]),
                      {"action": "deprovisioning", "wants_deprovisioning": "on"})
    organisation.connection.refresh_from_db()
    assert organisation.connection.wants_deprovisioning
    html = step(admin_client, 5)
    assert "<strong>Full</strong> <span class=\"badge\">required for deprovisioning" in html
    assert "Edit: required for deprovisioning" in html
    admin_client.post(reverse("setup_step", args=["acme", 5]), {"action": "deprovisioning"})
    organisation.connection.refresh_from_db()
    assert not organisation.connection.wants_deprovisioning


def test_step_4_needs_a_choice_before_done(organisation, admin_client):
    response = admin_client.post(reverse("setup_step", args=["acme", 4]), {"action": "done"}, follow=True)
    assert "Choose role-based or user-based first." in response.content.decode()
    assert not organisation.connection.step_completions.exists()


def test_unknown_step_is_404(admin_client):
    assert admin_client.get("/organisations/acme/setup/step-7/").status_code == 404
    assert admin_client.get("/organisations/acme/setup/step-0/").status_code == 404
