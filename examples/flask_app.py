"""A Flask app in hybrid mode: authstate's ``/auth`` blueprint, a JSON API, a staff page.

    authstate users add alice --role staff --password-stdin
    gunicorn --chdir examples --threads 8 flask_app:app

The auth cookies are the ones ``authstate serve`` and the ASGI apps write: on one store
(``AUTHSTATE_STORE``), a login on any of them is valid on all (docs/flask.md).
"""

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from authstate.flask import AuthState, current_principal

app = Flask(__name__)
# Settings from AUTHSTATE_* (mode: hybrid, store: sqlite:///authstate.db by default).
auth = AuthState(app)
notes: dict[str, list[str]] = {}  # user id -> notes; a real app has a database


@app.get("/")
def home() -> dict[str, object]:
    if not current_principal:
        return {"signed_in": False}
    return {"signed_in": True, "user_id": current_principal.user_id}


@app.get("/notes")
@auth.require()
def list_notes() -> ResponseReturnValue:
    return jsonify(notes=notes.get(current_principal.user_id, []))


@app.post("/notes")
@auth.require()
def add_note() -> ResponseReturnValue:
    # An unsafe method: authstate has already checked the X-CSRF-Token header.
    text = str((request.get_json(silent=True) or {}).get("text", ""))[:200]
    notes.setdefault(current_principal.user_id, []).append(text)
    return jsonify(notes=notes[current_principal.user_id]), 201


@app.get("/staff")
@auth.require(role="staff")
def staff_only() -> dict[str, str]:
    return {"hello": "staff"}
