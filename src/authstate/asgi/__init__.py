"""The ASGI layer: the only place authstate speaks HTTP (Starlette lives here and in server/)."""
