"""Dev-only OpenID Connect issuer on 127.0.0.1: discovery document, JWKS and signed demo tokens.

`AUTH_MODE=jwt make run` starts one so the gateway's real JWT authorizer can be tried without an
identity provider. Its RSA signing key lives only in this process; `rotate()` adds a new key (new
kid) the way IdPs rotate, and `available = False` makes the JWKS answer 503 (an IdP outage).
Browser pages (the approvals inbox) sign demo users in through `code_flow` (local/code_flow.py).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.code_flow import AUTHORIZE_PATH, TOKEN_PATH, CodeFlow, read_form

DEFAULT_AUDIENCE = "sfn-gateway-local"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"
# Long enough to copy a token from `make run`'s banner and use it for a working day.
DEMO_TOKEN_LIFETIME = 12 * 3600
DEMO_USERS = {
    "ada": {"groups": ["approvers"], "scopes": ["workflows/start", "workflows/read"]},
    "bob": {"groups": ["developers"], "scopes": ["workflows/read"]},
}


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
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "nbf": now, "exp": now + lifetime,
            "groups": list(groups), "scope": " ".join(scopes),
        }
        claims.update(overrides)
        return claims

    def mint(self, sub: str, groups=(), scopes=(), lifetime: int = 3600, headers=None, **overrides) -> str:
        """A signed RS256 token for sub."""
        return jwt.encode(self.claims(sub, groups, scopes, lifetime, **overrides), self.private_key,
                          algorithm="RS256", headers={"kid": self.kid, **(headers or {})})

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
