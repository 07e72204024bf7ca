"""USAGE_PLANS: one API Gateway usage plan (throttle, quota) and one API key per partner.

`make package` turns each plan into a UsagePlan, an ApiKey whose value API Gateway generates
and the UsagePlanKey joining them (tools/partners_wiring.py); every route but /health then
requires the key. The function learns which key id is which plan from API_KEY_PLANS, a JSON
object `{"<api key id>": "<plan>"}` the package fills in, so the access log can name the plan.
"""
import functools
import json
import os
import re
from dataclasses import dataclass

from chalicelib.errors import GatewayMisconfigured

# API Gateway's quota periods.
QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
_PLAN_KEYS = ("name", "throttle", "quota", "description")
_THROTTLE_KEYS = ("rateLimit", "burstLimit")
_QUOTA_KEYS = ("limit", "period", "offset")
# A plan's name becomes part of CloudFormation logical ids and Terraform names: letters and digits.
_PLAN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}\Z")
EXAMPLE = '[{"name": "acme", "throttle": {"rateLimit": 10, "burstLimit": 20}, "quota": {"limit": 100000, "period": "MONTH"}}]'


@dataclass(frozen=True)
class UsagePlan:
    """One partner's plan: requests per second (steady and burst) and requests per period."""

    name: str
    rate_limit: float | None = None
    burst_limit: int | None = None
    quota_limit: int | None = None
    quota_period: str | None = None
    quota_offset: int = 0
    description: str = ""


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message} Example: USAGE_PLANS='{EXAMPLE}'.")


def _object(where: str, value, allowed) -> dict:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object.")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _fail(f"{where} has unknown keys {unknown}; allowed: {list(allowed)}.")
    return value


def _whole(where: str, value, low: int) -> int:
    if type(value) is not int or value < low:
        raise _fail(f"{where} must be a whole number of at least {low}, got {value!r}.")
    return value


def _parse_plan(index: int, entry) -> UsagePlan:
    where = f"USAGE_PLANS[{index}]"
    entry = _object(where, entry, _PLAN_KEYS)
    name = entry.get("name")
    if not isinstance(name, str) or not _PLAN_NAME.match(name):
        raise _fail(f"{where}.name must be 1-64 letters and digits, starting with a letter, got {name!r}.")
    where = f'USAGE_PLANS[{index}] ("{name}")'
    throttle = _object(f"{where}.throttle", entry.get("throttle", {}), _THROTTLE_KEYS)
    rate = throttle.get("rateLimit")
    if rate is not None and (type(rate) not in (int, float) or rate <= 0):
        raise _fail(f"{where}.throttle.rateLimit must be a positive number of requests per second, got {rate!r}.")
    burst = throttle.get("burstLimit")
    if burst is not None:
        _whole(f"{where}.throttle.burstLimit", burst, 1)
    quota = _object(f"{where}.quota", entry.get("quota", {}), _QUOTA_KEYS)
    if quota and ("limit" not in quota or "period" not in quota):
        raise _fail(f"{where}.quota needs both limit and period.")
    if quota.get("period") is not None and quota["period"] not in QUOTA_PERIODS:
        raise _fail(f"{where}.quota.period must be one of {list(QUOTA_PERIODS)}, got {quota['period']!r}.")
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{where}.description must be a string.")
    return UsagePlan(
        name=name, rate_limit=rate, burst_limit=burst,
        quota_limit=_whole(f"{where}.quota.limit", quota["limit"], 1) if quota else None,
        quota_period=quota.get("period"), quota_offset=_whole(f"{where}.quota.offset", quota.get("offset", 0), 0),
        description=description,
    )


def parse_usage_plans(raw: str | None) -> tuple:
    """The stage's usage plans from the USAGE_PLANS JSON text (none when unset)."""
    if raw is None or not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise _fail(f"USAGE_PLANS is not valid JSON ({err}).") from None
    if not isinstance(entries, list) or not entries:
        raise _fail("USAGE_PLANS must be a non-empty JSON list of plans.")
    plans = tuple(_parse_plan(index, entry) for index, entry in enumerate(entries))
    names = [plan.name.lower() for plan in plans]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise _fail(f"USAGE_PLANS names the plan {repeated[0]!r} twice (names are compared ignoring case).")
    return plans


def api_keys_required(environ) -> bool:
    """True when the stage sets USAGE_PLANS: every route but /health then needs an x-api-key."""
    return bool(parse_usage_plans(environ.get("USAGE_PLANS")))


@functools.cache
def _plans_by_key_id() -> dict:
    try:
        mapping = json.loads(os.environ.get("API_KEY_PLANS") or "{}")
    except ValueError:
        return {}
    return mapping if isinstance(mapping, dict) else {}


def plan_of(context: dict | None) -> str | None:
    """The usage plan of the request's API key (from API Gateway's request context), or None."""
    key_id = ((context or {}).get("identity") or {}).get("apiKeyId")
    return _plans_by_key_id().get(key_id) if key_id else None
