from django.urls import include, path

from wizard import dashboard, ops, ratelimit, status_api, views

urlpatterns = [
    path("", include("wizard.records_urls")),  # synced data
    path("", views.home, name="home"),
    path("accounts/login/", ratelimit.RateLimitedLoginView.as_view(), name="login"),  # before auth.urls
    path("accounts/password_reset/", ratelimit.RateLimitedPasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/signup/", views.signup, name="signup"),
    path("organisations/", views.organisation_list, name="organisation_list"),
    path("organisations/<slug:slug>/setup/", views.setup, name="setup"),
    path("organisations/<slug:slug>/setup/step-<int:number>/", views.setup_step, name="setup_step"),
    path("organisations/<slug:slug>/connection/", views.connection, name="connection"),
    path("organisations/<slug:slug>/connection/revalidate/", views.connection_revalidate,
         name="connection_revalidate"),
    path("organisations/<slug:slug>/connection/password/", views.connection_password,
         name="connection_password"),
    path("organisations/<slug:slug>/connection/entity/", views.connection_entity, name="connection_entity"),
    path("organisations/<slug:slug>/connection/disconnect/", views.connection_disconnect,
         name="connection_disconnect"),
    path("organisations/<slug:slug>/validations/<int:run_id>/", views.validation_status,
         name="validation_status"),
    # Support dashboard and operations
    path("support/", dashboard.dashboard, name="dashboard"),
    path("support/connections.csv", dashboard.dashboard_export, name="dashboard_export"),
    path("support/connections/<int:connection_id>/", dashboard.dashboard_connection, name="dashboard_connection"),
    path("support/connections/<int:connection_id>/revalidate/", dashboard.dashboard_revalidate,
         name="dashboard_revalidate"),
    path("support/connections/<int:connection_id>/sync/", dashboard.dashboard_sync, name="dashboard_sync"),
    path("support/connections/<int:connection_id>/step-link/", dashboard.dashboard_step_link,
         name="dashboard_step_link"),
    path("api/v1/organisations/<slug:slug>/status/", status_api.connection_status, name="api_connection_status"),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
]
