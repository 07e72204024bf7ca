"""The inbox page: a public shell (no data) whose script signs people in with the stage's OIDC issuer.

The page, its script and its style are files under static/, served by the gateway itself
under a strict Content-Security-Policy: no inline script, no third-party host; the browser
may connect only to the gateway and to the issuer (discovery and token endpoint). The
shell carries settings only (issuer, client id); the approvals come from the API, asked
with the signed-in person's bearer token.
"""
import functools
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalice import NotFoundError, Response

from chalicelib.auth.identity import auth_mode, cognito_user_pool_arns
from chalicelib.auth.settings import check_key_url, jwt_settings_from_environ
from chalicelib.errors import GatewayMisconfigured

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
# URL name -> (file under static/, Content-Type). The page links them relative to its own URL.
FILES = {
    "app.js": ("inbox.js", "text/javascript; charset=utf-8"),
    "app.css": ("inbox.css", "text/css; charset=utf-8"),
}
# OAuth client ids: Cognito's are alphanumeric, others add . _ - : @ (e.g. Google's ...apps.googleusercontent.com).
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,256}$")
# RFC 6749 3.3: space-separated scope tokens of printable ASCII but " and \.
_SCOPES = re.compile(r'^[!#-\[\]-~]+( [!#-\[\]-~]+)*$')
DEFAULT_SCOPES = "openid"
# Which token the API's authorizer takes: API Gateway's Cognito authorizer (no scopes configured)
# verifies ID tokens; the gateway's JWT authorizer checks the audience of access tokens (JWT_AUDIENCE).
_TOKEN_BY_MODE = {"jwt": "access_token", "cognito": "id_token"}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # The sign-in code is in the page's address until the script removes it: never send it on.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class PageSettings:
    """What the page needs: whom to sign in with, as which client, which token to send, where it may connect."""

    issuer: str
    client_id: str
    scopes: str
    token: str
    connect_origins: tuple


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _cognito_issuer(environ) -> str:
    # arn:aws:cognito-idp:<region>:<account>:userpool/<pool id>; the first pool signs people in.
    arn = cognito_user_pool_arns(environ)[0]
    return f"https://cognito-idp.{arn.split(':')[3]}.amazonaws.com/{arn.rsplit('/', 1)[1]}"


def _auth_origin(environ, mode: str) -> str | None:
    raw = (environ.get("INBOX_AUTH_ORIGIN") or "").strip()
    if not raw:
        if mode == "cognito":
            raise _fail("The inbox page on AUTH_MODE=cognito needs INBOX_AUTH_ORIGIN, the origin of the user pool's "
                        "domain that serves its token endpoint, e.g. https://<domain>.auth.<region>.amazoncognito.com.")
        return None
    check_key_url("INBOX_AUTH_ORIGIN", raw)
    if _origin(raw) != raw:
        raise _fail(f"INBOX_AUTH_ORIGIN must be an origin (scheme, host, optional port; no path), got {raw!r}.")
    return raw


def page_settings(environ) -> PageSettings:
    """The inbox page's settings from the stage's variables, with a message naming each mistake."""
    mode = auth_mode(environ)
    if mode not in _TOKEN_BY_MODE:
        raise _fail("The inbox page needs AUTH_MODE jwt or cognito: people sign in with an OIDC issuer.")
    issuer = jwt_settings_from_environ(environ).issuer if mode == "jwt" else _cognito_issuer(environ)
    client_id = (environ.get("INBOX_CLIENT_ID") or "").strip()
    if not _CLIENT_ID.match(client_id):
        raise _fail(
            "The inbox page needs INBOX_CLIENT_ID, the OAuth client id of a public client (no secret) registered "
            "with the issuer for the authorization code flow with PKCE, its redirect URI the page's URL "
            f"(https://<api>/<stage>/inbox); got {client_id!r}."
        )
    scopes = " ".join((environ.get("INBOX_SCOPES") or DEFAULT_SCOPES).split())
    if not _SCOPES.match(scopes) or len(scopes) > 1024:
        raise _fail(f"INBOX_SCOPES must be OAuth scopes separated by spaces (e.g. \"openid email\"), got {scopes!r}.")
    extra = _auth_origin(environ, mode)
    origins = tuple(dict.fromkeys(o for o in (_origin(issuer), extra) if o))
    return PageSettings(issuer=issuer, client_id=client_id, scopes=scopes, token=_TOKEN_BY_MODE[mode],
                        connect_origins=origins)


def content_security_policy(settings: PageSettings) -> str:
    """Scripts and styles from the gateway only; fetches to the gateway and the issuer only."""
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src " + " ".join(("'self'",) + settings.connect_origins),
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        # The script writes text only; any HTML sink would be refused.
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ])


@functools.cache
def _read(name: str) -> str:
    with open(os.path.join(STATIC_DIR, name), encoding="utf-8") as file:
        return file.read()


def page(environ) -> Response:
    """The inbox page's HTML shell."""
    import html  # only the page's requests need these
    from string import Template

    settings = page_settings(environ)
    body = Template(_read("inbox.html")).substitute(
        issuer=html.escape(settings.issuer), client_id=html.escape(settings.client_id),
        scopes=html.escape(settings.scopes), token=html.escape(settings.token))
    return Response(body=body, status_code=200, headers={
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": content_security_policy(settings),
        "Cache-Control": "no-store",
        **_SECURITY_HEADERS,
    })


def static_file(name: str) -> Response:
    """The page's script or style."""
    if name not in FILES:
        raise NotFoundError(f"The inbox page has no file {name[:60]!r}; it has {', '.join(FILES)}.")
    file_name, content_type = FILES[name]
    return Response(body=_read(file_name), status_code=200, headers={
        "Content-Type": content_type,
        # Small files: always revalidated, so a deploy reaches the next page load.
        "Cache-Control": "no-cache",
        **_SECURITY_HEADERS,
    })
