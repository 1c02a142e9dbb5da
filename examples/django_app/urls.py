from django.urls import include, path

from django_app import views

urlpatterns = [
    path("auth/", include("authstate.django.urls")),
    path("", views.home),
    path("notes", views.notes),
    path("staff", views.staff_only),
    path("reports", views.reports),
]
