"""``AuthStateBackend`` for ``AUTHENTICATION_BACKENDS``: Django's permission checks on an
authstate user. A role is a permission: the principal with role ``"reports.view"`` has
``user.has_perm("reports.view")``; role ``"superuser"`` has every permission.

Authentication itself is the middleware's (from the cookie); ``authenticate(request)``
returns the user it established, ``get_user`` none (there is no Django session to load)."""

from __future__ import annotations

from typing import Any

from authstate.django.users import PrincipalUser


class AuthStateBackend:
    def authenticate(self, request: Any, **credentials: Any) -> PrincipalUser | None:
        user = getattr(request, "user", None)
        return user if isinstance(user, PrincipalUser) and not credentials else None

    def get_user(self, user_id: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if not isinstance(user_obj, PrincipalUser):
            return False
        return user_obj.principal.has_role("superuser") or user_obj.principal.has_role(perm)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return isinstance(user_obj, PrincipalUser) and user_obj.has_module_perms(app_label)
