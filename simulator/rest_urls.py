"""URLs of the simulated REST API, mounted at /simulator/ia/api/v1/ as Intacct serves it at /ia/api/v1/."""
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from simulator import oauth, rest

urlpatterns = [
    # The sign-in form posts back here; Django's CSRF check stays on for it (it is a page, not an API).
    path("oauth2/authorize", sensitive_post_parameters("password")(oauth.authorize), name="rest_authorize"),
    # Machine-to-machine endpoints: authenticated by client secret or bearer token, not by cookie.
    path("oauth2/token", csrf_exempt(sensitive_post_parameters()(oauth.token_endpoint)), name="rest_token"),
    path("oauth2/revoke", csrf_exempt(sensitive_post_parameters()(oauth.revoke_endpoint)), name="rest_revoke"),
    path("services/core/query", csrf_exempt(rest.query), name="rest_query"),
    path("objects/<path:object_path>", csrf_exempt(rest.objects), name="rest_objects"),
]
