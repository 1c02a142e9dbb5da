"""docs/api.md is complete and its signatures are the code's.

Headings name what they document: ``## `module```, then ``### `Name(signature)``` for a
module member and ``#### `[async ]name(signature)``` for a member of the ``###`` above it.
A heading without parentheses documents a class, protocol or attribute. Signatures are
compared without annotations; when one fails, copy the expected text into the heading.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any

import pytest

import authstate
from authstate import AuthState, Settings, Verifier
from tests.docs.markdown import DOCS

API = DOCS / "api.md"
_HEADING = re.compile(r"^(#{2,4}) `(async )?([A-Za-z_][\w.]*)(\(.*\))?`$")


@dataclass(frozen=True)
class Entry:
    level: int
    module: str
    owner: str | None  # the class of a member entry
    name: str
    is_async: bool
    signature: str | None
    line: int


def entries() -> list[Entry]:
    found: list[Entry] = []
    module = ""
    owner: str | None = None
    for number, line in enumerate(API.read_text().splitlines(), start=1):
        match = _HEADING.match(line)
        if match is None:
            continue
        hashes, is_async, name, signature = match.groups()
        level = len(hashes)
        if level == 2:
            module, owner = name, None
            continue
        if level == 3:
            owner = name
            found.append(Entry(3, module, None, name, bool(is_async), signature, number))
        else:
            found.append(Entry(4, module, owner, name, bool(is_async), signature, number))
    return found


def render(obj: Any) -> str:
    """A signature as the page writes it: no annotations, no ``self``."""
    signature = inspect.signature(obj)
    parameters = [
        p.replace(annotation=inspect.Parameter.empty)
        for p in signature.parameters.values()
        if p.name != "self"
    ]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def _is_instance_attribute(owner: type, name: str) -> bool:
    if dataclasses.is_dataclass(owner) and name in {f.name for f in dataclasses.fields(owner)}:
        return True
    # The class or a base that sets it (AuthState sets its settings in AuthCore.__init__).
    for cls in owner.__mro__:
        init = inspect.getsource(cls.__init__) if "__init__" in vars(cls) else ""
        if f"self.{name} =" in init or f"self.{name}:" in init:
            return True
    return False


def resolve(entry: Entry) -> tuple[Any, Any]:
    """(the documented object, the class it belongs to or None)."""
    module = importlib.import_module(entry.module)
    if entry.level == 3:
        return getattr(module, entry.name), None
    assert entry.owner is not None
    owner = getattr(module, entry.owner)
    return inspect.getattr_static(owner, entry.name, None), owner


ENTRIES = entries()


def test_the_page_has_entries() -> None:
    assert len(ENTRIES) > 50


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.owner or e.module}.{e.name}" for e in ENTRIES])
def test_each_heading_matches_the_code(entry: Entry) -> None:
    """The name exists; a signature in the heading is the real one; "async" means a coroutine."""
    obj, owner = resolve(entry)
    where = f"api.md:{entry.line}"
    if obj is None and owner is not None:
        # An instance attribute set in __init__ (AuthState.settings) or a dataclass field.
        assert _is_instance_attribute(owner, entry.name), f"{where}: {entry.name} does not exist"
        return
    assert obj is not None, f"{where}: {entry.name} does not exist"
    function = obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    if entry.signature is not None:
        target = getattr(owner, entry.name) if isinstance(obj, classmethod) else function
        expected = render(target)
        assert entry.signature == expected, f"{where}: the code says {entry.name}{expected}"
    if entry.is_async or entry.signature is not None:
        assert inspect.iscoroutinefunction(function) == entry.is_async, (
            f"{where}: {entry.name} is {'not ' if entry.is_async else ''}a coroutine function"
        )


def test_every_public_name_is_documented() -> None:
    """Each name in ``authstate.__all__`` has a heading or a row in the errors table."""
    text = API.read_text()
    table = text.split("<!-- check: errors-table -->", 1)[1].split("\n\n", 1)[0]
    errors = set(re.findall(r"^\| `(\w+)`", table, flags=re.M))
    headings = {e.name for e in ENTRIES if e.level == 3 and e.module == "authstate"}
    assert set(authstate.__all__) <= headings | errors, "undocumented public names"


@pytest.mark.parametrize("cls", [AuthState, Verifier, Settings])
def test_every_public_method_and_property_is_documented(cls: type) -> None:
    """A new public method of AuthState, Verifier or Settings needs its entry here."""
    documented = {e.name for e in ENTRIES if e.owner == cls.__name__}
    members = {
        name
        for name, value in vars(cls).items()
        if not name.startswith("_")
        and (callable(value) or isinstance(value, (property, classmethod)))
        and not (cls is Settings and name.endswith("_seconds"))  # listed in the prose
        and not (cls is Settings and name == "cookie_secure")
    }
    assert members <= documented, f"undocumented: {sorted(members - documented)}"


def test_the_errors_table_is_the_error_tree() -> None:
    """Each row's parent, status and code are the class's."""
    text = API.read_text()
    table = text.split("<!-- check: errors-table -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = [
        [c.strip().strip("`") for c in line.strip("|").split("|")]
        for line in table.splitlines()[2:]
    ]
    assert {row[0] for row in rows} == {
        name
        for name in authstate.__all__
        if isinstance(getattr(authstate, name), type)
        and issubclass(getattr(authstate, name), authstate.AuthStateError)
    }
    for name, parent, status, code, _when in rows:
        error = getattr(authstate, name)
        assert error.__bases__[0].__name__ == parent, name
        assert (error.status_code, error.code) == (int(status), code), name
