"""The three ways authentication state is kept: stateless, session and hybrid.

Modes return values (issued credentials, principals) and never touch HTTP.
"""
