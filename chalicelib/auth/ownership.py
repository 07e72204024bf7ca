"""Names only this deployment can make: owner tags, caller-bound idempotency names, listing tokens.

Each is an HMAC-SHA256 (stdlib hmac) keyed by the stage's secret, an SSM SecureString named by
STAGE_SECRET_PARAMETER and read once per container (chalicelib.factory.get_stage_secret). Without
that secret nobody can compute them, even knowing a caller's id and the full names of her
executions. The message is a JSON list, so no choice of id or name can collide with another's.
"""
import base64
import binascii
import hashlib
import hmac
import json

from chalicelib.errors import ValidationError

OWNER_TAG_HEX = 20
OWNER_TAG_LENGTH = OWNER_TAG_HEX + 1  # the tag and its dash
# Step Functions names are at most 80 characters; an Idempotency-Key name leaves room for an owner tag.
_KEY_PREFIX_LENGTH = 26
_KEY_DIGEST_HEX = 32
LISTING_TOKEN_PREFIX = "gwl1."


def _mac(secret: bytes, *fields) -> str:
    message = json.dumps(list(fields), ensure_ascii=True, separators=(",", ":")).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _caller_fields(caller: dict | None) -> tuple:
    caller = caller or {}
    return str(caller.get("type") or ""), str(caller.get("id") or "")


def owner_tag(secret: bytes, caller: dict, name: str) -> str:
    """The prefix that marks the execution `name` as started by this caller on an ownerOnly machine."""
    return _mac(secret, "owner", *_caller_fields(caller), name)[:OWNER_TAG_HEX] + "-"


def owned_name(secret: bytes, caller: dict, name: str) -> str:
    """The execution name the gateway starts for this caller's `name` on an ownerOnly machine."""
    return owner_tag(secret, caller, name) + name


def is_owned_by(secret: bytes, caller: dict | None, execution_name: str) -> bool:
    """True when the execution name carries this caller's owner tag for the rest of the name."""
    if not caller or not caller.get("id") or len(execution_name) <= OWNER_TAG_LENGTH:
        return False
    tag, rest = execution_name[:OWNER_TAG_LENGTH], execution_name[OWNER_TAG_LENGTH:]
    return hmac.compare_digest(tag, owner_tag(secret, caller, rest))


def idempotency_name(secret: bytes, caller: dict | None, key: str) -> str:
    """The caller's own execution name for an Idempotency-Key: the same key from two callers never collides."""
    return f"{key[:_KEY_PREFIX_LENGTH]}-{_mac(secret, 'idempotency', *_caller_fields(caller), key)[:_KEY_DIGEST_HEX]}"


def listing_token(secret: bytes, caller: dict, machine_name: str, sfn_token: str) -> str:
    """The gateway's nextToken for a filtered listing, bound to the caller and the state machine."""
    payload = base64.urlsafe_b64encode(sfn_token.encode()).decode()
    return f"{LISTING_TOKEN_PREFIX}{payload}.{_mac(secret, 'listing', *_caller_fields(caller), machine_name, sfn_token)}"


def listing_sfn_token(secret: bytes, caller: dict, machine_name: str, token: str) -> str:
    """The Step Functions token inside a listing token this gateway gave this caller for this machine."""
    refused = ValidationError("nextToken is not a token this gateway gave you for this listing; pass it back unchanged.")
    if not token.startswith(LISTING_TOKEN_PREFIX) or token.count(".") != 2:
        raise refused
    payload, mac = token[len(LISTING_TOKEN_PREFIX):].split(".")
    try:
        sfn_token = base64.urlsafe_b64decode(payload.encode()).decode()
    except (binascii.Error, ValueError) as err:
        raise refused from err
    if not hmac.compare_digest(mac, _mac(secret, "listing", *_caller_fields(caller), machine_name, sfn_token)):
        raise refused
    return sfn_token
