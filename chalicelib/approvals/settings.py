"""The approvals settings of a stage: parsed by chalicelib/config.py with the rest, checked where they are used.

APPROVALS_TABLE and APPROVALS_DLQ_URL name resources the package creates, so they exist only in the
deployed functions (and on the local stack): a stage's configuration without them is valid, and
the first use that needs one names it.
"""
from dataclasses import dataclass

from chalicelib.errors import ApprovalsDisabled
from chalicelib.setting_rules import fail

# DynamoDB table names: 3-255 of letters, digits, _ - .
_TABLE_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class ApprovalsSettings:
    """Where approvals live: the DynamoDB table, and the dead-letter queue for malformed messages."""

    table: str | None
    dead_letter_queue_url: str | None


def approvals_enabled(environ) -> bool:
    """APPROVALS=on|off (default off)."""
    raw = (environ.get("APPROVALS") or "off").strip().lower()
    if raw not in ("on", "off"):
        raise fail(f"APPROVALS must be on or off, got {environ.get('APPROVALS')!r}.")
    return raw == "on"


def parse_approvals(environ) -> ApprovalsSettings | None:
    """The stage's approvals settings; None when APPROVALS is off."""
    if not approvals_enabled(environ):
        return None
    table = (environ.get("APPROVALS_TABLE") or "").strip() or None
    if table is not None and not (3 <= len(table) <= 255 and set(table) <= _TABLE_NAME_CHARACTERS):
        raise fail(f"APPROVALS_TABLE must be a DynamoDB table name (3-255 of letters, digits, _ - .), got {table!r}.")
    queue_url = (environ.get("APPROVALS_DLQ_URL") or "").strip() or None
    if queue_url is not None and not queue_url.startswith(("https://", "http://")):
        raise fail(f"APPROVALS_DLQ_URL must be the URL of the approvals dead-letter queue, got {queue_url!r}.")
    return ApprovalsSettings(table=table, dead_letter_queue_url=queue_url)


def approvals_table(settings: ApprovalsSettings | None) -> str:
    """The table, or the error that says what is missing."""
    if settings is None:
        raise ApprovalsDisabled("This stage has no approvals inbox (APPROVALS=on turns it on; docs/approvals.md).")
    if settings.table is None:
        raise fail("APPROVALS=on needs APPROVALS_TABLE, the name of the approvals DynamoDB table "
                   "(make package sets it to the table it creates).")
    return settings.table


def dead_letter_queue_url(settings: ApprovalsSettings | None) -> str:
    """The dead-letter queue URL, which the consumer needs (and only the consumer)."""
    approvals_table(settings)
    if settings.dead_letter_queue_url is None:
        raise fail("The approvals consumer needs APPROVALS_DLQ_URL, the URL of the dead-letter queue for "
                   "malformed messages (make package sets it).")
    return settings.dead_letter_queue_url
