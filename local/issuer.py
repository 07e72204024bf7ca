"""Dev-only OpenID Connect issuer on 127.0.0.1: discovery document, JWKS and signed demo tokens.

`AUTH_MODE=jwt make run` starts one so the gateway's real JWT authorizer can be tried without an
identity provider. Its RSA signing key is made at start; `rotate()` adds a new key (new kid) the way
IdPs rotate, and `available = False` makes the JWKS answer 503 (an IdP outage).

`make run` leaves the running issuer's address and key in .local/ (local/state.py, readable by
you only), so that tokens for any caller can be minted while it runs:

    python -m local.issuer token --sub carol --groups approvers,ops --scopes "orders/start orders/read"

Browser pages (the approvals inbox) sign demo users in through `code_flow` (local/code_flow.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.state import read_state, remove_state, shown, state_path, write_private_state
from local.code_flow import AUTHORIZE_PATH, TOKEN_PATH, CodeFlow, read_form

DEFAULT_AUDIENCE = "sfn-gateway-local"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"
# Long enough to copy a token from `make run`'s banner and use it for a working day.
DEMO_TOKEN_LIFETIME = 12 * 3600
# What `make run` leaves in .local/ for `python -m local.issuer token`.
RUNNING_ISSUER_FILE = "dev-issuer.json"
DEFAULT_TOKEN_LIFETIME = 3600
DEMO_USERS = {
    "ada": {"groups": ["approvers"], "scopes": ["workflows/start", "workflows/read"]},
    "bob": {"groups": ["developers"], "scopes": ["workflows/read"]},
}


def token_claims(issuer: str, audience: str, sub: str, groups=(), scopes=(), lifetime: int = 3600,
                 **overrides) -> dict:
    """The claims of a token for sub, valid from now for lifetime seconds (negative: already expired)."""
    now = int(time.time())
    claims = {
        "iss": issuer, "aud": audience, "sub": sub, "iat": now, "nbf": now, "exp": now + lifetime,
        "groups": list(groups), "scope": " ".join(scopes),
    }
    claims.update(overrides)
    return claims


def new_signing_key() -> tuple[str, rsa.RSAPrivateKey]:
    """A fresh RSA key and its kid."""
    return f"dev-{uuid.uuid4().hex[:12]}", rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(kid: str, private_key) -> dict:
    """The JWKS entry of a key: public part only."""
    jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


class DevIssuer:
    """A tiny OIDC issuer: serves discovery + JWKS over HTTP on 127.0.0.1 and mints RS256 tokens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, audience: str = DEFAULT_AUDIENCE):
        self.audience = audience
        self.available = True
        self.jwks_requests = 0
        # Where publish() left this issuer's record for `python -m local.issuer token`, if it did.
        self.record = None
        self._keys = [new_signing_key()]
        # Browser sign-in (authorization code + PKCE) for the inbox page; clients register their loopback URLs.
        self.code_flow = CodeFlow(self, DEMO_USERS)
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def kid(self) -> str:
        """The kid new tokens are signed with."""
        return self._keys[-1][0]

    @property
    def private_key(self):
        return self._keys[-1][1]

    def jwks(self) -> dict:
        """The published key set."""
        return {"keys": [public_jwk(kid, key) for kid, key in self._keys]}

    def rotate(self, keep_old: bool = True) -> str:
        """Start signing with a new key (published alongside the old one unless keep_old is false)."""
        self._keys = (self._keys if keep_old else []) + [new_signing_key()]
        return self.kid

    def claims(self, sub: str, groups=(), scopes=(), lifetime: int = 3600, **overrides) -> dict:
        """The claims of a token for sub, valid from now for lifetime seconds."""
        return token_claims(self.issuer, self.audience, sub, groups, scopes, lifetime, **overrides)

    def mint(self, sub: str, groups=(), scopes=(), lifetime: int = 3600, headers=None, **overrides) -> str:
        """A signed RS256 token for sub."""
        return jwt.encode(self.claims(sub, groups, scopes, lifetime, **overrides), self.private_key,
                          algorithm="RS256", headers={"kid": self.kid, **(headers or {})})

    def publish(self) -> str:
        """Leave this issuer's address and current key in .local/ for `python -m local.issuer token`; where."""
        pem = self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        record = {"issuer": self.issuer, "audience": self.audience, "kid": self.kid, "privateKey": pem}
        self.record = shown(write_private_state(RUNNING_ISSUER_FILE, json.dumps(record)))
        return self.record

    def unpublish(self) -> None:
        """Take this issuer's record out of .local/ (another run's record stays)."""
        try:
            record = json.loads(read_state(RUNNING_ISSUER_FILE) or "{}")
        except ValueError:
            return
        if record.get("issuer") == self.issuer:
            remove_state(RUNNING_ISSUER_FILE)

    def demo_tokens(self) -> dict:
        """Tokens for the demo users (one of them in the approvers group)."""
        return {user: self.mint(user, lifetime=DEMO_TOKEN_LIFETIME, **info) for user, info in DEMO_USERS.items()}

    def start(self) -> "DevIssuer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="dev-issuer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "DevIssuer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _handler(self):
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                if self.path == DISCOVERY_PATH:
                    self._json(200, {"issuer": issuer.issuer, "jwks_uri": issuer.url + JWKS_PATH,
                                     "id_token_signing_alg_values_supported": ["RS256"],
                                     **issuer.code_flow.discovery()})
                elif path == AUTHORIZE_PATH:
                    issuer.code_flow.handle_authorize(self, query)
                elif self.path == JWKS_PATH:
                    issuer.jwks_requests += 1
                    if issuer.available:
                        self._json(200, issuer.jwks())
                    else:
                        self._json(503, {"error": "temporarily unavailable"})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self):
                form = read_form(self)
                if self.path not in (AUTHORIZE_PATH, TOKEN_PATH):
                    self._json(404, {"error": "not found"})
                elif form is None:
                    self._json(400, {"error": "invalid_request",
                                     "error_description": "Send a form (application/x-www-form-urlencoded) under 16 KiB."})
                elif self.path == AUTHORIZE_PATH:
                    issuer.code_flow.handle_authorize(self, "", form)
                else:
                    issuer.code_flow.handle_token(self, form)

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                # Public documents: the inbox page (another origin) reads the discovery document.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


class NoRunningIssuer(Exception):
    """No dev issuer is running for this project (or its record in .local/ is stale)."""


def mint_with_running_issuer(sub: str, groups=(), scopes=(), lifetime: int = DEFAULT_TOKEN_LIFETIME) -> str:
    """A token signed by the dev issuer that `AUTH_MODE=jwt make run` is running now."""
    path = shown(state_path(RUNNING_ISSUER_FILE))
    raw = read_state(RUNNING_ISSUER_FILE)
    if raw is None:
        raise NoRunningIssuer(f"No dev issuer is running: start one with `AUTH_MODE=jwt make run` (it writes {path}).")
    try:
        record = json.loads(raw)
        key = serialization.load_pem_private_key(record["privateKey"].encode(), password=None)
        issuer, audience, kid = record["issuer"], record["audience"], record["kid"]
    except (ValueError, KeyError, TypeError) as err:
        raise NoRunningIssuer(f"{path} is not a dev issuer record; restart `AUTH_MODE=jwt make run`.") from err
    # The record outlives a run that was killed: only a key the issuer still publishes counts.
    try:
        published = requests.get(issuer + JWKS_PATH, timeout=5).json()["keys"]
    except (requests.RequestException, ValueError, KeyError, TypeError) as err:
        raise NoRunningIssuer(f"The dev issuer {issuer} (from {path}) does not answer; is `AUTH_MODE=jwt make run` "
                              "still running?") from err
    if kid not in {entry.get("kid") for entry in published}:
        raise NoRunningIssuer(f"The dev issuer {issuer} no longer publishes the key in {path}; restart "
                              "`AUTH_MODE=jwt make run`.")
    return jwt.encode(token_claims(issuer, audience, sub, groups, scopes, lifetime), key, algorithm="RS256",
                      headers={"kid": kid})


def _names(text: str, separator: str | None) -> list:
    return [name.strip() for name in text.split(separator) if name.strip()]


def main(argv=None) -> int:
    """`token`: print a token of the running dev issuer (stdout: the token, nothing else)."""
    parser = argparse.ArgumentParser(prog="python -m local.issuer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="print a token signed by the dev issuer of `AUTH_MODE=jwt make run`")
    token.add_argument("--sub", required=True, help="the caller's id (the sub claim)")
    token.add_argument("--groups", default="", help="comma-separated group names, e.g. approvers,ops")
    token.add_argument("--scopes", default="", help='space-separated scopes, e.g. "orders/start orders/read"')
    token.add_argument("--expires-in", type=int, default=DEFAULT_TOKEN_LIFETIME,
                       help=f"seconds until it expires (default {DEFAULT_TOKEN_LIFETIME}; negative: already expired)")
    args = parser.parse_args(argv)
    try:
        minted = mint_with_running_issuer(args.sub, _names(args.groups, ","), _names(args.scopes, None),
                                          args.expires_in)
    except NoRunningIssuer as err:
        print(err, file=sys.stderr)
        return 1
    print(minted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
