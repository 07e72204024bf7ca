"""Who is calling: the stage's authorizer (chosen once, at import) and one caller record per request.

AUTH_MODE, COGNITO_USER_POOL_ARNS and AUTHORIZER_TTL are the only settings read at import
time: Chalice must know the authorizer while it builds the API, and `chalice package`,
`deploy` and `local` load the stage's environment variables before importing app.py.
Everything else (state machines, access rules, the JWT issuer) is read on first use.
"""
import contextvars
import json
import os
import re

from chalice import Blueprint, CognitoUserPoolAuthorizer, IAMAuthorizer

from chalicelib.errors import GatewayMisconfigured

AUTH_MODES = ("iam", "cognito", "jwt")
# API Gateway caches an authorizer's answer per token for 0-3600 s.
DEFAULT_AUTHORIZER_TTL = 300
MAX_AUTHORIZER_TTL = 3600
JWT_AUTHORIZER_NAME = "jwt_authorizer"
COGNITO_AUTHORIZER_NAME = "cognito"

_USER_POOL_ARN = re.compile(r"^arn:aws[a-z-]*:cognito-idp:[a-z0-9-]+:\d{12}:userpool/[\w-]+_[0-9a-zA-Z]+$")
# API Gateway reports an assumed-role session as arn:aws:sts::<account>:assumed-role/<role>/<session>;
# the caller is the role (sessions are named by whoever assumes it, so they identify nobody).
_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")

_CURRENT_CALLER = contextvars.ContextVar("sfn_gateway_caller", default=None)


def _fail(message: str) -> GatewayMisconfigured:
    return GatewayMisconfigured(f"Invalid gateway configuration: {message}")


def auth_mode(environ) -> str:
    """AUTH_MODE of the stage: iam (default), cognito or jwt."""
    mode = (environ.get("AUTH_MODE") or "iam").strip().lower()
    if mode not in AUTH_MODES:
        raise _fail(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, got {environ.get('AUTH_MODE')!r}.")
    return mode


def cognito_user_pool_arns(environ) -> list:
    """COGNITO_USER_POOL_ARNS: a JSON list of user pool ARNs (cognito stages)."""
    raw = environ.get("COGNITO_USER_POOL_ARNS")
    try:
        arns = json.loads(raw or "")
    except ValueError:
        arns = None
    if not isinstance(arns, list) or not arns or not all(isinstance(a, str) and _USER_POOL_ARN.match(a) for a in arns):
        raise _fail(
            "AUTH_MODE=cognito needs COGNITO_USER_POOL_ARNS, a JSON list of user pool ARNs like "
            f'["arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"], got {raw!r}.'
        )
    return arns


def authorizer_ttl(environ) -> int:
    """AUTHORIZER_TTL: seconds API Gateway caches the JWT authorizer's answer (0-3600, default 300)."""
    raw = environ.get("AUTHORIZER_TTL")
    if raw in (None, ""):
        return DEFAULT_AUTHORIZER_TTL
    try:
        ttl = int(raw)
    except ValueError:
        ttl = -1
    if not 0 <= ttl <= MAX_AUTHORIZER_TTL:
        raise _fail(f"AUTHORIZER_TTL must be a whole number of seconds from 0 to {MAX_AUTHORIZER_TTL}, got {raw!r}.")
    return ttl


_JWT_BLUEPRINT = Blueprint(__name__)


# Registered with the app only on jwt stages: Chalice deploys one Lambda function per
# declared authorizer. Its handler is "chalicelib.auth.identity.jwt_authorizer", so the
# authorizer's cold start imports this module and PyJWT, never app.py or boto3.
@_JWT_BLUEPRINT.authorizer(name=JWT_AUTHORIZER_NAME)
def jwt_authorizer(auth_request):
    """Verify the bearer token; allow every route of the API for its caller, or refuse with 401."""
    from chalicelib.auth.jwt_auth import authorize

    return authorize(auth_request)


def route_authorizer(app, environ=os.environ):
    """The authorizer every private route uses, from the stage's AUTH_MODE (read once, at import)."""
    mode = auth_mode(environ)
    if mode == "cognito":
        return CognitoUserPoolAuthorizer(COGNITO_AUTHORIZER_NAME, provider_arns=cognito_user_pool_arns(environ))
    if mode == "jwt":
        from chalicelib.auth.settings import jwt_settings_from_environ

        # Checked now too, so that `chalice package` / `deploy` refuse a stage without an issuer.
        jwt_settings_from_environ(environ)
        ttl = authorizer_ttl(environ)
        app.register_blueprint(_JWT_BLUEPRINT)
        # Registration builds the authorizer's config; the TTL is the stage's, known only now.
        jwt_authorizer.config.ttl_seconds = ttl
        return jwt_authorizer
    return IAMAuthorizer()


def _iam_caller_id(user_arn: str) -> str:
    assumed = _ASSUMED_ROLE.match(user_arn)
    if assumed:
        return "arn:{partition}:iam::{account}:role/{role}".format(**assumed.groupdict())
    return user_arn


def _claim_list(value) -> list:
    # API Gateway flattens Cognito claims to strings ("a,b" or "[a b]"); tokens carry lists.
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str) and item]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text.strip("[]").replace(",", " ").split()
            return _claim_list(parsed)
        return [item for item in text.replace(",", " ").split() if item]
    return []


def caller_record(context: dict | None) -> dict | None:
    """The caller {"type", "id", "groups", "scopes"} from API Gateway's request context, or None."""
    context = context or {}
    authorizer = context.get("authorizer") or {}
    claims = authorizer.get("claims")
    if isinstance(claims, dict) and claims.get("sub"):
        return {
            "type": "cognito",
            "id": claims["sub"],
            "groups": _claim_list(claims.get("cognito:groups")),
            "scopes": _claim_list(claims.get("scope")),
        }
    if authorizer.get("callerType") == "jwt" and authorizer.get("sub"):
        return {
            "type": "jwt",
            "id": authorizer["sub"],
            "groups": _claim_list(authorizer.get("groups")),
            "scopes": _claim_list(authorizer.get("scopes")),
        }
    user_arn = (context.get("identity") or {}).get("userArn")
    if user_arn:
        return {"type": "iam", "id": _iam_caller_id(user_arn), "groups": [], "scopes": []}
    return None


def bind_caller(request) -> dict | None:
    """Record this request's caller for the access checks further down the call."""
    caller = caller_record(request.context)
    _CURRENT_CALLER.set(caller)
    return caller


def current_caller() -> dict | None:
    """The caller of the request being handled (None when unauthenticated)."""
    return _CURRENT_CALLER.get()
