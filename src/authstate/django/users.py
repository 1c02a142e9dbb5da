"""What ``request.user`` is for an authstate principal: enough of Django's user interface
for ``@login_required``, ``user.has_perm`` / ``@permission_required`` and templates,
without a database row (the user lives in authstate's store)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from authstate.principal import Principal


class PrincipalUser:
    """The user of a request authenticated by authstate. ``has_perm`` asks the configured
    authentication backends (``AuthStateBackend`` grants a permission named like one of
    the principal's roles)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.pk = self.id = principal.user_id
        self.roles = principal.roles
        # Django's admin reads these; authstate maps them from roles of the same name.
        self.is_staff = principal.has_role("staff")
        self.is_superuser = principal.has_role("superuser")

    def __str__(self) -> str:
        return self.principal.user_id

    def get_username(self) -> str:
        return self.principal.user_id

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        from django.contrib.auth import get_backends

        for backend in get_backends():
            check = getattr(backend, "has_perm", None)
            if check is not None and check(self, perm, obj):
                return True
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return any(role.startswith(f"{app_label}.") for role in self.roles)


class AnonymousPrincipalUser:
    """``request.user`` without a principal (when nothing else set one)."""

    is_authenticated = False
    is_anonymous = True
    is_active = False
    is_staff = False
    is_superuser = False
    pk = id = None
    roles: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "AnonymousUser"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perm_list: Iterable[str], obj: Any = None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False
