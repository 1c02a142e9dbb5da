"""authstate for Django: ``AuthStateMiddleware``, ``AuthStateBackend`` (``request.user``,
``@login_required``, permission checks), ``require(role=...)`` and the ``/auth`` URLconf
(``authstate.django.urls``); settings from ``settings.AUTHSTATE`` over ``AUTHSTATE_*``
(docs/django.md). Import the submodules; this package imports nothing from Django."""
