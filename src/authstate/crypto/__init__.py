"""Low-level cryptography of authstate.

WARNING: these are the sharp parts. Application code should use ``authstate.AuthState``;
nothing here is re-exported from ``authstate``. Everything that verifies raises on failure
and never returns a boolean.
"""
