"""``GET /metrics`` of the reference server: the Prometheus text exposition of its
``AuthState`` (``authstate.metrics.Collector``). Only mounted with ``AUTHSTATE_METRICS=1``
or ``authstate serve --metrics``; the ``metrics`` extra must be installed then."""

from __future__ import annotations

import importlib.util

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from authstate.asgi.auth_state import AuthState
from authstate.errors import ConfigurationError

MISSING = (
    "metrics need the prometheus_client package: pip install 'authstate[metrics]' "
    "(or turn AUTHSTATE_METRICS / --metrics off)"
)


def check_metrics_available() -> None:
    """``ConfigurationError`` with the install line when ``prometheus_client`` is missing."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise ConfigurationError(MISSING)


def metrics_route(auth: AuthState) -> Route:
    """The ``/metrics`` route, with a registry of its own holding ``auth``'s collector."""
    check_metrics_available()
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from authstate.metrics import Collector

    registry = CollectorRegistry(auto_describe=True)
    registry.register(Collector(auth))

    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(registry),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    return Route("/metrics", metrics, methods=["GET"])
