import json

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse

from authstate.django.views import get_principal, require

saved_notes: dict[str, list[str]] = {}  # user id -> notes; a real app has a database


def home(request: HttpRequest) -> HttpResponse:
    principal = get_principal(request)
    if principal is None:
        return JsonResponse({"signed_in": False})
    return JsonResponse({"signed_in": True, "user_id": principal.user_id})


@require()
def notes(request: HttpRequest) -> HttpResponse:
    user_id = str(request.user.pk)
    if request.method == "POST":
        # An unsafe method: authstate's middleware has already checked the CSRF token.
        text = str(json.loads(request.body or b"{}").get("text", ""))[:200]
        saved_notes.setdefault(user_id, []).append(text)
        return JsonResponse({"notes": saved_notes[user_id]}, status=201)
    return JsonResponse({"notes": saved_notes.get(user_id, [])})


@require(role="staff")
def staff_only(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"hello": "staff"})


@login_required  # type: ignore[untyped-decorator]  # (Django ships no type hints)
@permission_required("reports.view", raise_exception=True)  # type: ignore[untyped-decorator]
def reports(request: HttpRequest) -> HttpResponse:
    # Django's own decorators: request.user is the authstate user, roles are permissions.
    return JsonResponse({"reports": [], "user": str(request.user)})
