"""CORS, chosen per stage when app.py is imported.

Chalice must know it while it builds the API: preflights become API Gateway MOCK
integrations (no Lambda call, no authorizer) only on stages that allow an origin.
`chalice package/deploy/local` load the stage's environment variables before importing
app.py, so CORS_ALLOW_ORIGIN is read here, once, at import.
"""
import os
import re

from chalice import CORSConfig

ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Amz-Content-Sha256", "X-Amz-Date",
                 "X-Amz-Security-Token"]
EXPOSE_HEADERS = ["Location", "Retry-After"]
MAX_AGE_SECONDS = 600
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


def cors_config(environ=os.environ) -> CORSConfig | None:
    """The stage's CORS configuration, or None when CORS_ALLOW_ORIGIN is unset."""
    origin = environ.get("CORS_ALLOW_ORIGIN") or None
    if origin is None:
        return None
    if origin != "*" and not _ORIGIN.match(origin):
        raise ValueError(
            f"Invalid gateway configuration: CORS_ALLOW_ORIGIN must be * or an origin like "
            f"https://app.example.com (scheme, host, optional port, no path), got {origin!r}."
        )
    return CORSConfig(allow_origin=origin, allow_headers=ALLOW_HEADERS, expose_headers=EXPOSE_HEADERS,
                      max_age=MAX_AGE_SECONDS)


STAGE_CORS = cors_config()


def add_cors_headers(response) -> None:
    """Give errors raised past Chalice's own CORS handling the same headers as its answers."""
    if STAGE_CORS is None:
        return
    for name, value in STAGE_CORS.get_access_control_headers().items():
        response.headers.setdefault(name, value)
    if STAGE_CORS.allow_origin != "*":
        response.headers.setdefault("Vary", "Origin")
