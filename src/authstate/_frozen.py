"""Fast construction of the immutable value objects built on every first sight of a
credential (claims, principals, session records).

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__``
(frozen classes refuse plain attribute writes), about 0.1 µs a field on the cold
verification path. ``builder(cls)`` returns a positional constructor that stores the
fields into a plain slotted twin of ``cls`` (same slots, same layout) and then makes the
object a ``cls``: the result is an ordinary instance of the frozen class in every respect
(type, equality, hash, repr, ``dataclasses.replace``, frozenness), built at a third of the
cost. It only applies to slotted frozen dataclasses without ``__post_init__``, default
factories being irrelevant (every field is passed) -- ``builder`` checks this up front.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def builder(cls: type[T]) -> Callable[..., T]:
    """``cls(*fields)`` (every field, in declaration order, positionally), faster."""
    params = getattr(cls, "__dataclass_params__", None)
    slots = cls.__dict__.get("__slots__")
    if (
        params is None
        or not params.frozen
        or slots is None
        or hasattr(cls, "__post_init__")
        or cls.__bases__ != (object,)
    ):
        raise TypeError(f"{cls.__name__} is not a slotted frozen dataclass builder() can build")
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    if sorted(names) != sorted(slots):
        raise TypeError(f"{cls.__name__}: fields and slots differ")
    twin = type(f"_{cls.__name__}Fields", (), {"__slots__": slots})
    # Generated like dataclasses' own __init__: the names are the class's field names.
    source = (
        f"def build({', '.join(names)}):\n"
        "    obj = new(twin)\n"
        + "".join(f"    obj.{name} = {name}\n" for name in names)
        + "    obj.__class__ = cls\n"
        "    return obj\n"
    )
    namespace: dict[str, Any] = {"new": object.__new__, "twin": twin, "cls": cls}
    exec(source, namespace)  # noqa: S102  # our own field names, not input
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"builder({cls.__qualname__})"
    return build
