"""The dev issuer's sign-in for browser pages: authorization code + PKCE (S256), as the inbox page uses it.

Dev only, on loopback: `GET /authorize` shows one button per demo user ("Sign in as ada"), or
with `login_hint=<user>` (asked from a loopback address) signs that user in at once; the page
then swaps the code for tokens at `POST /token`. The rules a real IdP keeps are kept here too,
so the page is tried against them: redirect URIs match a registered loopback list exactly,
PKCE is required and only S256 is accepted, codes are single-use and live 60 seconds.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from chalicelib.setting_rules import is_loopback_host

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
# The client id `make run` gives the inbox page (stage setting INBOX_CLIENT_ID).
INBOX_CLIENT_ID = "sfn-gateway-inbox"
# RFC 6749 10.5 asks for short-lived codes; 60 s is ample for a page's redirect and exchange.
CODE_LIFETIME_SECONDS = 60
TOKEN_LIFETIME_SECONDS = 3600
MAX_FORM_BYTES = 16 * 1024
# RFC 7636 4.1: 43-128 unreserved characters; an S256 challenge is 32 bytes in unpadded base64url.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_AUTHORIZE_FIELDS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                     "code_challenge", "code_challenge_method")


class AuthorizationError(Exception):
    """An OAuth error; to_client says whether it may go back to the redirect URI (RFC 6749 4.1.2.1)."""

    def __init__(self, error: str, description: str, to_client: bool = True):
        super().__init__(description)
        self.error = error
        self.description = description
        self.to_client = to_client


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request: who asks, where the code goes, and the PKCE challenge."""

    client_id: str
    redirect_uri: str
    state: str
    scope: str
    nonce: str
    code_challenge: str

    def fields(self) -> dict:
        """The request as the sign-in form carries it to its POST."""
        return {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                "scope": self.scope, "state": self.state, "nonce": self.nonce,
                "code_challenge": self.code_challenge, "code_challenge_method": "S256"}


@dataclass(frozen=True)
class _Grant:
    user: str
    request: AuthorizationRequest
    expires_at: float


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _single_values(raw: str) -> dict:
    # RFC 6749 3.1: a parameter sent twice makes the request invalid.
    values = parse_qs(raw, keep_blank_values=True)
    repeated = sorted(name for name, found in values.items() if len(found) > 1)
    if repeated:
        raise AuthorizationError("invalid_request", f"Parameters sent more than once: {', '.join(repeated)}.")
    return {name: found[0] for name, found in values.items()}


class CodeFlow:
    """Authorization codes for registered loopback clients, exchanged for the issuer's tokens."""

    def __init__(self, issuer, users: dict, clock=time.time, code_lifetime: float = CODE_LIFETIME_SECONDS):
        self._issuer = issuer
        self._users = users
        self._clock = clock
        self._code_lifetime = code_lifetime
        self._clients: dict[str, tuple] = {}
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def register_client(self, client_id: str, redirect_uris) -> None:
        """Allow a public client to sign people in, back to these loopback URLs only."""
        uris = tuple(redirect_uris)
        for uri in uris:
            parts = urlsplit(uri)
            if parts.scheme != "http" or not is_loopback_host(parts.hostname) or parts.query or parts.fragment:
                raise ValueError(f"The dev issuer only redirects to http:// loopback URLs without query, got {uri!r}.")
        with self._lock:
            self._clients[client_id] = tuple(dict.fromkeys(self._clients.get(client_id, ()) + uris))

    def allowed_origins(self) -> set:
        """Origins of every registered redirect URI: the pages that may call the token endpoint."""
        return {"{0.scheme}://{0.netloc}".format(urlsplit(uri)) for uris in self._clients.values() for uri in uris}

    def discovery(self) -> dict:
        """What the discovery document adds for browser sign-in."""
        return {
            "authorization_endpoint": self._issuer.url + AUTHORIZE_PATH,
            "token_endpoint": self._issuer.url + TOKEN_PATH,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid"],
            "subject_types_supported": ["public"],
        }

    def authorization_request(self, params: dict) -> AuthorizationRequest:
        """Check an authorization request; errors before the redirect URI is trusted never go to it."""
        client_id = params.get("client_id", "")
        if client_id not in self._clients:
            raise AuthorizationError("unauthorized_client", f"Unknown client_id {client_id!r}.", to_client=False)
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self._clients[client_id]:
            raise AuthorizationError(
                "invalid_request", f"redirect_uri {redirect_uri!r} is not registered for client {client_id!r}.",
                to_client=False)
        if params.get("response_type") != "code":
            raise AuthorizationError("unsupported_response_type", "Only response_type=code is supported.")
        if params.get("code_challenge_method") != "S256":
            # RFC 7636 4.3: a missing method means "plain", which gives no protection here.
            raise AuthorizationError("invalid_request", "PKCE is required with code_challenge_method=S256.")
        challenge = params.get("code_challenge", "")
        if not _S256_CHALLENGE.match(challenge):
            raise AuthorizationError("invalid_request", "code_challenge must be 43 base64url characters (S256).")
        return AuthorizationRequest(client_id=client_id, redirect_uri=redirect_uri, state=params.get("state", ""),
                                    scope=params.get("scope", "openid"), nonce=params.get("nonce", ""),
                                    code_challenge=challenge)

    def issue_code(self, request: AuthorizationRequest, user: str) -> str:
        """A new single-use code for user; returns the redirect URL that carries it."""
        if user not in self._users:
            raise AuthorizationError("access_denied", f"{user!r} is not a demo user of the dev issuer.")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._drop_expired()
            self._codes[code] = _Grant(user, request, self._clock() + self._code_lifetime)
        return self._redirect(request, {"code": code})

    def error_redirect(self, request_params: dict, err: AuthorizationError) -> str:
        """Where to send the browser with an error the client may see."""
        uri = request_params["redirect_uri"]
        answer = {"error": err.error, "error_description": err.description}
        if request_params.get("state"):
            answer["state"] = request_params["state"]
        return f"{uri}?{urlencode(answer)}"

    def exchange(self, form: dict) -> dict:
        """Swap a code and its PKCE verifier for tokens (RFC 6749 4.1.3, RFC 7636 4.5)."""
        if form.get("grant_type") != "authorization_code":
            raise AuthorizationError("unsupported_grant_type", "Only grant_type=authorization_code is supported.")
        with self._lock:
            # Popped before any check: a code is spent by its first use, right or wrong.
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None:
            raise AuthorizationError("invalid_grant", "The code is unknown or was already used.")
        if self._clock() > grant.expires_at:
            raise AuthorizationError("invalid_grant", f"The code expired ({self._code_lifetime:g} s after it was issued).")
        if form.get("client_id") != grant.request.client_id:
            raise AuthorizationError("invalid_grant", "The code was issued to another client.")
        if form.get("redirect_uri") != grant.request.redirect_uri:
            raise AuthorizationError("invalid_grant", "redirect_uri differs from the one the code was issued for.")
        verifier = form.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(s256(verifier), grant.request.code_challenge):
            raise AuthorizationError("invalid_grant", "code_verifier does not match the code_challenge (S256).")
        return self._tokens(grant)

    def _tokens(self, grant: _Grant) -> dict:
        info = self._users[grant.user]
        access_token = self._issuer.mint(grant.user, lifetime=TOKEN_LIFETIME_SECONDS, **info)
        id_claims = {"nonce": grant.request.nonce} if grant.request.nonce else {}
        id_token = self._issuer.mint(grant.user, lifetime=TOKEN_LIFETIME_SECONDS, aud=grant.request.client_id,
                                     **info, **id_claims)
        return {"access_token": access_token, "id_token": id_token, "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS, "scope": grant.request.scope}

    def _drop_expired(self) -> None:
        now = self._clock()
        for code in [code for code, grant in self._codes.items() if now > grant.expires_at]:
            del self._codes[code]

    @staticmethod
    def _redirect(request: AuthorizationRequest, answer: dict) -> str:
        if request.state:
            answer = {**answer, "state": request.state}
        return f"{request.redirect_uri}?{urlencode(answer)}"

    def sign_in_page(self, request: AuthorizationRequest) -> str:
        """The page with one button per demo user; the form posts the checked request back."""
        hidden = "\n".join(f'    <input type="hidden" name="{name}" value="{html.escape(value)}">'
                           for name, value in request.fields().items())
        buttons = "\n".join(
            f'    <p><button type="submit" name="login" value="{html.escape(user)}">Sign in as {html.escape(user)}</button>'
            f" (groups: {html.escape(', '.join(info.get('groups', [])) or 'none')})</p>"
            for user, info in self._users.items())
        return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in: sfn-gateway dev issuer</title></head>
<body>
<main>
  <h1>Sign in</h1>
  <p>Dev issuer of the local stack: pick a demo user. <code>{html.escape(request.client_id)}</code>
  gets a token for that user and returns to <code>{html.escape(request.redirect_uri)}</code>.</p>
  <form method="post" action="{AUTHORIZE_PATH}">
{hidden}
{buttons}
  </form>
</main>
</body>
</html>
"""

    # --- HTTP: called by the issuer's request handler -------------------------------------------

    def handle_authorize(self, handler, query: str, body: str | None = None) -> None:
        """GET /authorize (the sign-in page, or login_hint) and its form's POST."""
        try:
            params = _single_values(body if body is not None else query)
        except AuthorizationError as err:
            return _page(handler, 400, _error_page(err))
        try:
            request = self.authorization_request(params)
        except AuthorizationError as err:
            if not err.to_client:
                return _page(handler, 400, _error_page(err))
            return _redirect(handler, self.error_redirect(params, err))
        if body is not None:
            user = params.get("login", "")
        elif params.get("login_hint") and is_loopback_host(handler.client_address[0]):
            user = params["login_hint"]
        else:
            origin = "{0.scheme}://{0.netloc}".format(urlsplit(request.redirect_uri))
            # The form posts here, and its answer redirects to the page: both must be allowed.
            return _page(handler, 200, self.sign_in_page(request), form_action=f"'self' {origin}")
        try:
            location = self.issue_code(request, user)
        except AuthorizationError as err:
            location = self.error_redirect(params, err)
        _redirect(handler, location)

    def handle_token(self, handler, body: str) -> None:
        """POST /token: JSON tokens, or a JSON OAuth error with 400."""
        origin = handler.headers.get("Origin")
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in self.allowed_origins() else {}
        try:
            status, answer = 200, self.exchange(_single_values(body))
        except AuthorizationError as err:
            status, answer = 400, {"error": err.error, "error_description": err.description}
        data = json.dumps(answer).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)),
                            "Cache-Control": "no-store", "Pragma": "no-cache", **cors}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def read_form(handler) -> str | None:
    """The url-encoded body of a POST, or None when it is too large or not a form."""
    raw_length = handler.headers.get("Content-Length") or "0"
    length = int(raw_length) if raw_length.isdigit() else -1
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not 0 <= length <= MAX_FORM_BYTES or content_type != "application/x-www-form-urlencoded":
        return None
    return handler.rfile.read(length).decode("utf-8", "replace")


def _error_page(err: AuthorizationError) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Sign-in refused</title></head>\n'
            f"<body><main><h1>Sign-in refused</h1><p>{html.escape(err.error)}: {html.escape(err.description)}</p>"
            f"</main></body></html>\n")


def _page(handler, status: int, text: str, form_action: str = "'none'") -> None:
    data = text.encode()
    handler.send_response(status)
    headers = {
        "Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(data)), "Cache-Control": "no-store",
        "Content-Security-Policy": f"default-src 'none'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    }
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _redirect(handler, location: str) -> None:
    # 303: the browser follows a POST's answer with a GET.
    handler.send_response(303)
    for name, value in {"Location": location, "Content-Length": "0", "Cache-Control": "no-store",
                        "Referrer-Policy": "no-referrer"}.items():
        handler.send_header(name, value)
    handler.end_headers()
