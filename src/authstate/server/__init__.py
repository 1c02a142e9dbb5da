"""The reference server: the ``/auth`` endpoints, the pages and the JWKS on one Starlette app.

Application code, not library code: nothing in authstate imports it.
"""

from authstate.server.app import app_from_env as app_from_env
from authstate.server.app import create_app as create_app

__all__ = ["app_from_env", "create_app"]
