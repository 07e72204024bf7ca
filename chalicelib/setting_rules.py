"""The rules every concern's settings share: the message for a mistake and the common shapes.

Each concern parses its own settings next to its code (stepfunctions/settings.py, auth/settings.py,
webhooks/settings.py); chalicelib/config.py reads the stage's variables once and hands each its part.
"""
import json
import re

from chalicelib.errors import GatewayMisconfigured

# SSM parameter names: letters, digits, _.-/ (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html).
SSM_PARAMETER_NAME = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
SSM_PARAMETER_MAX_LENGTH = 2048


def fail(message: str) -> GatewayMisconfigured:
    """The error for a configuration mistake, its message naming the setting and the fix."""
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def is_loopback_host(host: str | None) -> bool:
    """Whether a host name or address is this machine (localhost or a loopback address)."""
    # Imported here: only stages with URL settings get this far, and the API's cold start skips ipaddress.
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def require_object(where: str, entry: object, allowed, shape: str) -> None:
    """A configuration entry is a JSON object with only the allowed keys."""
    if not isinstance(entry, dict):
        raise fail(f"{where} must be an object with {shape}.")
    unknown = set(entry) - set(allowed)
    if unknown:
        raise fail(f"{where} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")


def json_list(key: str, raw: str, items: str) -> list:
    """A setting that holds a JSON list, or a message naming the setting and what it must hold."""
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise fail(f"{key} is not valid JSON ({err}).") from err
    if not isinstance(entries, list):
        raise fail(f"{key} must be a JSON list of {items}.")
    return entries


def number(environ, key: str, default: float, cast=float):
    """A positive number setting, or its default when unset."""
    raw = environ.get(key)
    if raw in (None, ""):
        return default
    try:
        value = cast(raw)
    except ValueError as err:
        raise fail(f"{key} must be a number, got {raw!r}.") from err
    if value <= 0:
        raise fail(f"{key} must be positive, got {raw!r}.")
    return value


def switch(environ, key: str, default: str) -> bool:
    """An on/off setting as a bool."""
    raw = (environ.get(key) or default).lower()
    if raw not in ("on", "off"):
        raise fail(f"{key} must be on or off, got {raw!r}.")
    return raw == "on"
