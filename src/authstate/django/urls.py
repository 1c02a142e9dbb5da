"""The ``/auth/*`` URLconf: ``path("auth/", include("authstate.django.urls"))``.

No trailing slashes, as over ASGI (``/auth/me/`` is an unknown path)."""

from django.urls import path

from authstate.django import views

app_name = "authstate"

urlpatterns = [
    path("login", views.login, name="login"),
    path("me", views.me, name="me"),
    path("refresh", views.refresh, name="refresh"),
    path("logout", views.logout, name="logout"),
    path("logout-all", views.logout_all, name="logout-all"),
    path("sessions", views.sessions, name="sessions"),
    path("sessions/revoke-others", views.revoke_others, name="revoke-others"),
    path("reauth", views.reauth, name="reauth"),
    path("sessions/<str:handle>", views.delete_session, name="delete-session"),
    path("password", views.password, name="password"),
    path("csrf", views.csrf, name="csrf"),
    path("token", views.token, name="token"),
    path("session/data", views.session_data, name="session-data"),
]
