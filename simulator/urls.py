from django.urls import path

from simulator import views

app_name = "simulator"
urlpatterns = [
    path("ia/xml/xmlgw.phtml", views.gateway, name="gateway"),
]
