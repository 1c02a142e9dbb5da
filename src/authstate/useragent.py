"""A short, human name for a User-Agent string, for the sessions tables of the dashboard and
of `authstate sessions list` ("Firefox on Linux").

Deliberately rough: it is a hint for the user recognising their own devices, not a
fingerprint, and the full string is shown beside it.
"""

from __future__ import annotations

# Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari", Android
# also says "Linux".
_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("HeadlessChrome/", "Headless Chrome"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
    ("curl/", "curl"),
    ("python-httpx/", "httpx"),
    ("python-requests/", "requests"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe(user_agent: str) -> str:
    """``"<browser> on <system>"``, the browser or program alone, or ``"Unknown device"``."""
    browser = next((name for marker, name in _BROWSERS if marker in user_agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in user_agent), None)
    if browser is None:
        first = user_agent.split("/", 1)[0].strip()
        browser = first[:40] if first and " " not in first else None
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
