"""authstate: web authentication state for ASGI apps."""
