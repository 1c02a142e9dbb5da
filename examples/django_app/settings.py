"""Settings of the example Django project: no database, no Django sessions; authstate
authenticates every request from its cookie.

    authstate users add alice --role staff --password-stdin
    gunicorn --chdir examples --threads 8 django_app.wsgi
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_app.urls"
# contrib.auth for its decorators (login_required); no model of it is used.
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DATABASES: dict[str, object] = {}
USE_TZ = True

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "authstate.django.middleware.AuthStateMiddleware",
]
AUTHENTICATION_BACKENDS = ["authstate.django.backend.AuthStateBackend"]
LOGIN_URL = "/auth/login"

# authstate's settings, e.g. {"mode": "session", "store": "redis://..."}: they win over the
# AUTHSTATE_* environment, which fills what is not given here (this example: everything).
AUTHSTATE: dict[str, object] = {}
