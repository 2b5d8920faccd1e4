from django.urls import path

from wizard import views

urlpatterns = [
    path("", views.home, name="home"),
]
