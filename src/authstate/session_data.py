"""Server-side session data: what an application keeps per session, beside the credential.

    data = await auth.session_data(request)      # read from the store, now
    data["cart"] = [*data.get("cart", []), item]  # checked at once: JSON only
    del data["coupon"]
    await data.save()                             # writes only the keys changed here

    await auth.update_session_data(request, {"theme": "dark"}, remove=["coupon"])  # one step

The data belongs to the server-side session (session mode) or to the refresh family
(hybrid mode, so it survives every rotation of the refresh token); a stateless token has
no server-side record, so there is none there (``NotFound``). It is never put in a cookie
or token: the client holds only the credential.

Rules (docs/api.md, "Server-side session data"):

- **JSON only.** Keys are strings; values are ``dict``/``list``/``str``/``int``/``float``/
  ``bool``/``None`` (a tuple is stored as a list). Anything else raises ``TypeError`` (NaN,
  infinity, text that is not Unicode: ``ValueError``) the moment it is set, before any write.
- **Capped.** The whole object, as compact UTF-8 JSON, may hold at most
  ``AUTHSTATE_SESSION_DATA_MAX_BYTES``; an update that would pass it raises
  ``SessionDataTooLarge`` (413) and writes nothing.
- **Last writer wins, per key.** ``save()`` sends the keys set and deleted since the read,
  and the store applies exactly those atomically to the data as stored then. A key another
  node changed meanwhile keeps its new value unless this update names it too.
- **Always current.** Reading goes to the store on every ``session_data()`` call, never to
  the node's session cache, so a change saved on one node is seen by the next read on any
  node (no wait for the invalidation bus).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, MutableMapping
from typing import Any

from authstate.errors import AuthenticationError, NotFound
from authstate.principal import Principal
from authstate.stores.base import SessionDataStore
from authstate.stores.session_data import check_update

__all__ = ["SessionData", "data_handle", "load_session_data", "update_session_data"]


class SessionData(MutableMapping[str, Any]):
    """One session's data as read from the store, plus the changes not saved yet.

    A mapping of JSON values: ``data["k"]``, ``data.get("k")``, ``data["k"] = v``,
    ``del data["k"]``, ``data.update(...)``, then ``await data.save()``. Values handed out
    are the object's own: change nested values by assigning the key again, so ``save()``
    knows to send it."""

    def __init__(
        self, store: SessionDataStore, handle: str, data: Mapping[str, Any], max_bytes: int
    ) -> None:
        self._store = store
        self._handle = handle
        self._data = dict(data)
        self._max_bytes = max_bytes
        self._set: dict[str, Any] = {}
        self._removed: set[str] = set()

    @property
    def session_id(self) -> str:
        """The public handle of the session or refresh family the data belongs to."""
        return self._handle

    @property
    def dirty(self) -> bool:
        """Whether there are changes that ``save()`` would write."""
        return bool(self._set or self._removed)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setitem__(self, key: str, value: Any) -> None:
        check_update({key: value}, ())
        self._data[key] = value
        self._set[key] = value
        self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._set.pop(key, None)
        self._removed.add(key)

    def to_dict(self) -> dict[str, Any]:
        """A plain copy of the data as this object sees it (changes included)."""
        return dict(self._data)

    async def save(self) -> None:
        """Write the changes made since the read (nothing when there are none).

        Afterwards the object holds the data as stored: this update applied, plus keys
        other nodes changed meanwhile. ``SessionDataTooLarge`` leaves the store and this
        object's pending changes as they were; ``AuthenticationError`` if the session ended.
        """
        if not self.dirty:
            return
        stored = await self._store.update_session_data(
            self._handle, self._set, remove=sorted(self._removed), max_bytes=self._max_bytes
        )
        if stored is None:
            raise AuthenticationError(reason="session ended before its data was saved")
        self._data, self._set, self._removed = stored, {}, set()

    def __repr__(self) -> str:
        return f"SessionData({self._data!r}, unsaved={self.dirty})"


def data_handle(principal: Principal) -> str:
    """The handle whose data a principal may use; ``NotFound`` in stateless mode."""
    if principal.mode == "stateless" or principal.session is None:
        raise NotFound(
            "session data exists only in session and hybrid modes"
            " (a stateless token has no server-side session)"
        )
    return principal.session.id


async def load_session_data(
    store: SessionDataStore, principal: Principal, max_bytes: int
) -> SessionData:
    handle = data_handle(principal)
    data = await store.get_session_data(handle)
    if data is None:
        raise AuthenticationError(reason="session ended before its data was read")
    return SessionData(store, handle, data, max_bytes)


async def update_session_data(
    store: SessionDataStore,
    principal: Principal,
    changes: Mapping[str, Any],
    remove: Collection[str],
    max_bytes: int,
) -> SessionData:
    handle = data_handle(principal)
    check_update(changes, remove)
    stored = await store.update_session_data(handle, changes, remove=remove, max_bytes=max_bytes)
    if stored is None:
        raise AuthenticationError(reason="session ended before its data was saved")
    return SessionData(store, handle, stored, max_bytes)
