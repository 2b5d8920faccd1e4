"""Top-level URL map. The simulator is mounted only when SIMULATOR_ENABLED."""
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("wizard.urls")),
]
if settings.SIMULATOR_ENABLED:
    urlpatterns.append(path("simulator/", include("simulator.urls")))

# A page that fails because the database is unreachable answers 503 (try again), not 500.
handler500 = "wizard.errors.server_error"
