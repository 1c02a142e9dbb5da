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
else:
    _tracer = trace.get_tracer("authstate")


def store_span(operation: str, scheme: str) -> contextlib.AbstractContextManager[Any]:
    """A span named ``authstate.store.<operation>`` (a no-op without OpenTelemetry)."""
    if _tracer is None:
        return contextlib.nullcontext()
    return _tracer.start_as_current_span(  # type: ignore[no-any-return]
        f"authstate.store.{operation}",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": scheme},
    )
