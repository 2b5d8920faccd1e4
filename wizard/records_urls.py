"""URLs of the synced data: sync, browsing, CSV, deprovisioning, API tokens and the JSON API."""
from django.urls import path

from wizard import records

urlpatterns = [
    path("organisations/<slug:slug>/sync/", records.sync_now, name="sync_now"),
    path("organisations/<slug:slug>/sync/status/", records.sync_status, name="sync_status"),
    path("organisations/<slug:slug>/records/<str:object_name>/", records.record_list, name="record_list"),
    path("organisations/<slug:slug>/records/<str:object_name>/csv/", records.record_csv, name="record_csv"),
    path("organisations/<slug:slug>/users/<int:recordno>/<str:action>/", records.user_deprovision,
         name="user_deprovision"),
    path("organisations/<slug:slug>/api-tokens/", records.api_tokens, name="api_tokens"),
    path("api/v1/organisations/<slug:slug>/objects/", records.api_objects, name="api_objects"),
    path("api/v1/organisations/<slug:slug>/objects/<str:object_name>/records/", records.api_records,
         name="api_records"),
]
