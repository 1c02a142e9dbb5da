"""authstate._frozen.builder: the value objects it builds are the frozen dataclasses'
own instances in every respect."""

from __future__ import annotations

import dataclasses
import pickle
from types import MappingProxyType

import pytest

from authstate._frozen import builder
from authstate.crypto.claims import AccessClaims
from authstate.principal import Principal, SessionInfo, TokenInfo
from authstate.stores.base import SessionRecord

SAMPLES: list[tuple[type, tuple[object, ...]]] = [
    (SessionInfo, ("h", 12.5)),
    (TokenInfo, ("j", 1, 2, "k")),
    (
        Principal,
        ("u", ("staff",), "hybrid", SessionInfo("h", 1.0), TokenInfo("j", 1, 2, "k"), {}, 5, False),
    ),
    (
        AccessClaims,
        ("i", "a", "s", 1, 1, 9, "j", "k", ("r",), None, 0, MappingProxyType({"x": 1})),
    ),
    (
        SessionRecord,
        (
            *("k", "h", "u", "session", 1.0, 2.0, 3.0, 4.0, ("r",), "ua", "ip", {"d": 1}),
            *(None, None, 3, {"c": 2}, 1, 0.0, True),
        ),
    ),
]


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_a_built_object_is_the_frozen_dataclass_itself(cls: type, values: tuple) -> None:
    built, plain = builder(cls)(*values), cls(*values)
    assert type(built) is cls
    assert built == plain and plain == built
    assert repr(built) == repr(plain)
    if cls not in (AccessClaims, SessionRecord):  # unhashable members in these samples
        assert hash(built) == hash(plain)
    names = [field.name for field in dataclasses.fields(cls)]
    assert [getattr(built, name) for name in names] == list(values)
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, first, "changed")
    assert dataclasses.replace(built) == plain
    if cls is not AccessClaims:  # a mappingproxy does not pickle
        assert pickle.loads(pickle.dumps(built)) == plain  # noqa: S301  # our own bytes


def test_builder_refuses_what_it_cannot_build_faithfully() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            raise ValueError

    for cls in (NoSlots, NotFrozen, Checked):
        with pytest.raises(TypeError):
            builder(cls)
