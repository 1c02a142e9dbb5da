"""The three ways authentication state is kept: stateless, session and hybrid.

Modes return values (issued credentials, principals) and never touch HTTP. One concept per
module: ``base`` (what every mode offers), ``jwt_mode`` (what stateless and hybrid share),
``stateless``/``session``/``hybrid``, ``access_tokens`` (issuing and the checked-token
cache), ``records`` (creating a session or refresh family), ``freshness`` (when a cache may
answer), ``context`` (a mode's dependencies), ``client`` and ``issued`` (what goes in and
comes out).
"""
