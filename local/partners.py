"""API keys and usage plans on the local stack, answered as API Gateway answers them.

`make run` gives each plan of USAGE_PLANS a key, kept in `.local/api-keys.json` so that it stays
the same across restarts. On routes that require a key: none or an unknown one is 403
{"message": "Forbidden"}; past the plan's throttle (a token bucket: rateLimit per second, up to
burstLimit at once) or its quota, 429 {"message": "Too Many Requests"} / {"message": "Limit Exceeded"}.
The local quota counts from the stack's start (API Gateway counts per DAY / WEEK / MONTH).
"""
import json
import secrets
import string
import threading
import time

from chalice.local import ForbiddenError, LocalGatewayException

from local.state import read_state, write_private_state

KEYS_FILE = "api-keys.json"
# API Gateway generates 40 letters and digits.
_KEY_ALPHABET = string.ascii_letters + string.digits
_KEY_LENGTH = 40


class TooManyRequests(LocalGatewayException):
    CODE = 429


def local_key_id(plan_name: str) -> str:
    """The API key id the local stack reports for a plan's key (API_KEY_PLANS maps it back)."""
    return f"local-{plan_name}"


def ensure_api_keys(plans) -> dict:
    """{plan: key} for every plan, the keys of plans seen before kept as they were."""
    try:
        known = json.loads(read_state(KEYS_FILE) or "{}")
    except ValueError:
        known = {}
    keys = {plan.name: known.get(plan.name) or "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_LENGTH))
            for plan in plans}
    if keys != {name: known.get(name) for name in keys} or set(known) - set(keys):
        # Keys of plans no longer configured stay in the file: a plan put back gets its old key.
        write_private_state(KEYS_FILE, json.dumps({**known, **keys}, indent=2) + "\n")
    return keys


class _Bucket:
    def __init__(self, rate: float | None, burst: int | None, quota: int | None, clock):
        self._rate, self._quota, self._clock = rate, quota, clock
        # API Gateway lets a burst through even with no rate set: rate alone fills a bucket of rate.
        self._capacity = burst if burst is not None else max(1.0, rate or 1.0)
        self._tokens = self._capacity
        self._stamp = clock()
        self._used = 0

    def take(self) -> str | None:
        """None when the request may pass, else API Gateway's message for refusing it."""
        if self._quota is not None and self._used >= self._quota:
            return "Limit Exceeded"
        if self._rate is not None:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens < 1:
                return "Too Many Requests"
            self._tokens -= 1
        self._used += 1
        return None


class PartnerGate:
    """Checks x-api-key against the plans' keys and meters each plan."""

    def __init__(self, plans, keys: dict, clock=time.monotonic):
        self._plan_by_key = {keys[plan.name]: plan.name for plan in plans}
        self._buckets = {plan.name: _Bucket(plan.rate_limit, plan.burst_limit, plan.quota_limit, clock)
                         for plan in plans}
        self._lock = threading.Lock()

    def admit(self, headers: dict, request_id: str) -> tuple[str, str]:
        """(api key, plan) of an admitted request; raises the 403 or 429 API Gateway would send."""
        key = next((value for name, value in headers.items() if name.lower() == "x-api-key"), None)
        plan = self._plan_by_key.get(key)
        error_headers = {"x-amzn-RequestId": request_id}
        if plan is None:
            raise ForbiddenError({**error_headers, "x-amzn-ErrorType": "ForbiddenException"},
                                 b'{"message":"Forbidden"}')
        with self._lock:
            refused = self._buckets[plan].take()
        if refused is not None:
            raise TooManyRequests({**error_headers, "x-amzn-ErrorType": "TooManyRequestsException"},
                                  json.dumps({"message": refused}).encode())
        return key, plan
