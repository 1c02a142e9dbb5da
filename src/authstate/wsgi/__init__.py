"""What the WSGI adapters (``authstate.flask``, ``authstate.django``) share, with no web
framework: the per-process event-loop thread that runs the async core, the request gate
(cookie, principal, CSRF) and the ``/auth/*`` endpoints over a neutral request."""
