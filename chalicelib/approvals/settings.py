"""The approvals settings of a stage, read on first use (never at import) with a clear error for each mistake."""
import functools
import os
from dataclasses import dataclass

from chalicelib.approvals.triggers import enabled
from chalicelib.errors import ApprovalsDisabled, GatewayMisconfigured

# DynamoDB table names: 3-255 of letters, digits, _ - .
_TABLE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class ApprovalsSettings:
    """Where approvals live: the DynamoDB table, and the dead-letter queue for malformed messages."""

    table: str
    dead_letter_queue_url: str | None


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def settings_from_environ(environ) -> ApprovalsSettings:
    """The stage's approvals settings; ApprovalsDisabled when APPROVALS is off."""
    if not enabled(environ):
        raise ApprovalsDisabled("This stage has no approvals inbox (APPROVALS=on turns it on; docs/approvals.md).")
    table = (environ.get("APPROVALS_TABLE") or "").strip()
    if not (3 <= len(table) <= 255 and set(table) <= _TABLE_NAME_CHARACTERS):
        raise _fail(
            "APPROVALS=on needs APPROVALS_TABLE, the name of the approvals DynamoDB table "
            f"(make package sets it to the table it creates), got {table!r}."
        )
    queue_url = (environ.get("APPROVALS_DLQ_URL") or "").strip() or None
    if queue_url is not None and not queue_url.startswith(("https://", "http://")):
        raise _fail(f"APPROVALS_DLQ_URL must be the URL of the approvals dead-letter queue, got {queue_url!r}.")
    return ApprovalsSettings(table=table, dead_letter_queue_url=queue_url)


@functools.cache
def get_settings() -> ApprovalsSettings:
    """The stage's approvals settings, read once."""
    return settings_from_environ(os.environ)


def dead_letter_queue_url(settings: ApprovalsSettings) -> str:
    """The dead-letter queue URL, which the consumer needs (and only the consumer)."""
    if settings.dead_letter_queue_url is None:
        raise _fail("The approvals consumer needs APPROVALS_DLQ_URL, the URL of the dead-letter queue for "
                    "malformed messages (make package sets it).")
    return settings.dead_letter_queue_url
