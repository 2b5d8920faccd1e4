from django.urls import include, path

from simulator import views

app_name = "simulator"
urlpatterns = [
    path("ia/xml/xmlgw.phtml", views.gateway, name="gateway"),
    path("ia/api/v1/", include("simulator.rest_urls")),
    path("", views.home, name="home"),
    path("mailbox/", views.mailbox, name="mailbox"),
    path("senders/", views.senders, name="senders"),
    path("companies/<str:company_id>/", views.company_home, name="company"),
    path("companies/<str:company_id>/admin/subscriptions/", views.subscriptions, name="subscriptions"),
    path("companies/<str:company_id>/setup/security/", views.security, name="security"),
    path("companies/<str:company_id>/setup/company-info/", views.company_info, name="company_info"),
    path("companies/<str:company_id>/setup/entities/", views.entities, name="entities"),
    path("companies/<str:company_id>/admin/roles/", views.roles, name="roles"),
    path("companies/<str:company_id>/admin/roles/<int:role_id>/", views.role_edit, name="role_edit"),
    path("companies/<str:company_id>/admin/users/", views.users, name="users"),
    path("companies/<str:company_id>/admin/applications/", views.applications_page, name="applications"),
    path("companies/<str:company_id>/admin/users/<int:user_id>/", views.user_edit, name="user_edit"),
    path("companies/<str:company_id>/faults/", views.faults, name="faults"),
    path("companies/<str:company_id>/stats/", views.stats, name="stats"),
]
