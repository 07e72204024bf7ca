"""OIDC bearer-token verification for jwt stages' built-in authorizer (PyJWT + cryptography).

Only the authorizer's Lambda function imports this module (PyJWT comes from a Lambda layer
attached to that function alone); the API function never does.
"""
import functools
import json
import logging
import os
import threading
import time
import urllib.request

import jwt
from chalice import AuthResponse
from jwt import PyJWKSet

from chalicelib.auth.settings import JwtSettings, check_key_url, jwt_settings_from_environ
from chalicelib.errors import GatewayMisconfigured

LOG = logging.getLogger("sfn_gateway.auth")

# Lambda reports the exception's text as errorMessage; API Gateway answers 401 for exactly this one.
UNAUTHORIZED_MESSAGE = "Unauthorized"

# The most clock skew tolerated between the IdP and Lambda for exp, nbf and iat.
CLOCK_SKEW_SECONDS = 60
# An unknown kid refreshes the JWKS at most this often: key rotation works, a flood of
# random kids does not hammer the IdP.
KID_REFRESH_SECONDS = 60
# Known keys are re-read this often too, so that a key the IdP withdrew (after a leak, say)
# stops being trusted within the hour even by a container that lives for days.
KEYS_MAX_AGE_SECONDS = 3600
# After a failed first fetch, wait this long before trying the IdP again.
FETCH_RETRY_SECONDS = 5
FETCH_TIMEOUT_SECONDS = 3
MAX_DOCUMENT_BYTES = 1024 * 1024
# API Gateway refuses headers over 10 KiB anyway; anything this long is not a token we issue.
MAX_TOKEN_CHARACTERS = 8192
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")


class Unauthorized(Exception):
    """A bearer token was refused; API Gateway turns this authorizer failure into 401."""

    def __init__(self, reason: str = ""):
        super().__init__(UNAUTHORIZED_MESSAGE)
        self.reason = reason


class JwksUnavailable(Exception):
    """The issuer's keys could not be fetched."""


def fetch_json(url: str) -> dict:
    """GET a JSON object (discovery document or JWKS) with a short timeout, no redirects."""
    try:
        opener = urllib.request.build_opener(_NoRedirect)
        with opener.open(urllib.request.Request(url, headers={"Accept": "application/json"}),
                         timeout=FETCH_TIMEOUT_SECONDS) as response:
            document = json.loads(response.read(MAX_DOCUMENT_BYTES + 1)[:MAX_DOCUMENT_BYTES])
    except (OSError, ValueError) as err:
        raise JwksUnavailable(f"{url}: {err}") from err
    if not isinstance(document, dict):
        raise JwksUnavailable(f"{url} did not answer a JSON object.")
    return document


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead the key fetch to another host; IdPs publish stable URLs.
    def redirect_request(self, *args, **kwargs):
        return None


class KeySet:
    """The issuer's signing keys, fetched once per container and refreshed for unknown kids."""

    def __init__(self, settings: JwtSettings, fetch=fetch_json, clock=time.monotonic):
        self._settings = settings
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys = None
        self._last_fetch = None
        self.fetches = 0

    def _jwks_url(self) -> str:
        if self._settings.jwks_url:
            return self._settings.jwks_url
        discovery = self._fetch(self._settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
        # OpenID Connect Discovery 1.0, section 4.3: the document's issuer must be the one configured.
        if discovery.get("issuer") != self._settings.issuer or not isinstance(discovery.get("jwks_uri"), str):
            raise JwksUnavailable("The discovery document names another issuer or no jwks_uri.")
        try:
            return check_key_url("jwks_uri", discovery["jwks_uri"])
        except GatewayMisconfigured as err:
            raise JwksUnavailable(str(err)) from err

    def _refresh(self) -> None:
        self._last_fetch = self._clock()
        self.fetches += 1
        document = self._fetch(self._jwks_url())
        try:
            key_set = PyJWKSet.from_dict(document)
        except jwt.PyJWTError as err:
            raise JwksUnavailable(f"The JWKS holds no usable key ({err}).") from err
        self._keys = {
            key.key_id: key for key in key_set.keys
            if key.key_id and key.public_key_use in ("sig", None) and key.algorithm_name in self._settings.algorithms
        }

    def key(self, kid: str):
        """The signing key with this kid, or None; raises JwksUnavailable when no keys can be had."""
        with self._lock:
            if self._keys is None:
                if self._last_fetch is not None and self._clock() - self._last_fetch < FETCH_RETRY_SECONDS:
                    raise JwksUnavailable("The JWKS could not be fetched a moment ago; not retrying yet.")
                self._refresh()
            else:
                age = self._clock() - self._last_fetch
                if (kid not in self._keys and age >= KID_REFRESH_SECONDS) or age >= KEYS_MAX_AGE_SECONDS:
                    try:
                        self._refresh()
                    except JwksUnavailable as err:
                        LOG.error("JWKS refresh failed; keeping the cached keys: %s", err)
            return self._keys.get(kid)


class TokenVerifier:
    """Verifies one issuer's tokens: signature, algorithm, exp, nbf, iat, iss, aud."""

    def __init__(self, settings: JwtSettings, keys: KeySet | None = None):
        self.settings = settings
        self.keys = keys or KeySet(settings)

    def claims(self, token: str) -> dict:
        """The verified claims of a token; raises Unauthorized for any bad token."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARACTERS:
            raise Unauthorized("missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as err:
            raise Unauthorized(f"malformed token ({err})") from err
        alg, kid = header.get("alg"), header.get("kid")
        # Decided from configuration alone, never from the token (RFC 8725, section 2.1).
        if alg not in self.settings.algorithms:
            raise Unauthorized(f"algorithm {alg!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token names no key (kid)")
        try:
            key = self.keys.key(kid)
        except JwksUnavailable as err:
            LOG.error("JWKS unavailable, refusing the request: %s", err)
            raise Unauthorized("the issuer's keys are unavailable") from err
        if key is None:
            raise Unauthorized(f"unknown key id {kid!r}")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(self.settings.algorithms),
                audience=list(self.settings.audiences),
                issuer=self.settings.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": list(REQUIRED_CLAIMS), "strict_aud": False},
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as err:
            raise Unauthorized(f"invalid token ({type(err).__name__}: {err})") from err
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthorized("the token has no subject")
        return claims


def _claim_strings(value) -> list:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    return []


def authorizer_context(claims: dict) -> dict:
    """The caller as API Gateway authorizer context (string values only)."""
    groups = _claim_strings(claims.get("groups")) or _claim_strings(claims.get("cognito:groups"))
    scopes = _claim_strings(claims.get("scope")) or _claim_strings(claims.get("scp"))
    return {
        "callerType": "jwt",
        "sub": claims["sub"],
        # A JSON list, because group names may contain spaces or commas; scopes never do (RFC 6749, 3.3).
        "groups": json.dumps(groups),
        "scopes": " ".join(scopes),
    }


def bearer_token(authorization: str | None) -> str:
    """The token of an "Authorization: Bearer <token>" header value."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header is not 'Bearer <token>'")
    return token.strip()


@functools.cache
def get_verifier() -> TokenVerifier:
    """The container's verifier (its JWKS cache lives as long as the container)."""
    return TokenVerifier(jwt_settings_from_environ(os.environ))


def authorize(auth_request) -> AuthResponse:
    """Allow every route of the API to the token's caller, or raise Unauthorized (401)."""
    try:
        claims = get_verifier().claims(bearer_token(auth_request.token))
    except Unauthorized as err:
        LOG.info("Bearer token refused: %s", err.reason)
        raise
    except Exception as err:  # noqa: BLE001 - whatever breaks, a request is refused, never let through or 500
        LOG.error("JWT authorizer failed, refusing the request: %s: %s", type(err).__name__, err)
        raise Unauthorized("authorizer failure") from err
    # API Gateway caches this answer per token for every route, so it must allow them all
    # ("*" becomes arn:aws:execute-api:<region>:<account>:<api>/<stage>/*/*).
    return AuthResponse(routes=["*"], principal_id=claims["sub"], context=authorizer_context(claims))
