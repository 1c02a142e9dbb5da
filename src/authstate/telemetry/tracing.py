"""OpenTelemetry spans around store calls, when ``opentelemetry-api`` is installed (the
``otel`` extra); without it, nothing. The API alone records nothing either: spans go
where the application's OpenTelemetry SDK sends them."""

from __future__ import annotations

import contextlib
import time
from typing import Any

try:
    from opentelemetry import trace
except ImportError:  # the extra is not installed: no spans
    _tracer: Any = None
    _NO_SDK: tuple[type, ...] = ()
else:
    _tracer = trace.get_tracer("authstate")
    # The API's stand-ins until an SDK sets the global provider: a span opened through
    # them records nothing, goes nowhere and carries its parent's context unchanged.
    _NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)

_NO_SPAN: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()

# Whether an SDK provider is installed: asked again at most once a second while none is (an
# application may install its SDK after we start; asking costs an environment lookup),
# never again once one is (OpenTelemetry sets the global provider once).
_RECHECK_SECONDS = 1.0
_sdk_installed = False
_recheck_at = 0.0


def _no_sdk() -> bool:
    global _sdk_installed, _recheck_at  # a module-wide answer, cached
    if _sdk_installed:
        return False
    now = time.monotonic()
    if now >= _recheck_at:
        _sdk_installed = not isinstance(trace.get_tracer_provider(), _NO_SDK)
        _recheck_at = now + _RECHECK_SECONDS
    return not _sdk_installed


def store_span(operation: str, scheme: str) -> contextlib.AbstractContextManager[Any]:
    """A span named ``authstate.store.<operation>`` (a no-op without OpenTelemetry)."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    # Without an SDK, skipping the span saves its cost (several µs a store call) and
    # changes nothing anyone can observe: the API's span records nothing, goes nowhere.
    if type(tracer) is trace.ProxyTracer and _no_sdk():
        return _NO_SPAN
    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        f"authstate.store.{operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": scheme},
    )
