"""OpenTelemetry spans around store calls, when ``opentelemetry-api`` is installed (the
``otel`` extra); without it, nothing. The API alone records nothing either: spans go
where the application's OpenTelemetry SDK sends them."""

from __future__ import annotations

import contextlib
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


def store_span(operation: str, scheme: str) -> contextlib.AbstractContextManager[Any]:
    """A span named ``authstate.store.<operation>`` (a no-op without OpenTelemetry)."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    # Asked on every call, not once: an application may install its SDK after we start.
    # Without one, skipping the span saves its cost (several µs a store call) and changes
    # nothing anyone can observe.
    if type(tracer) is trace.ProxyTracer and isinstance(trace.get_tracer_provider(), _NO_SDK):
        return _NO_SPAN
    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        f"authstate.store.{operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": scheme},
    )
