"""`make run`: the whole gateway on this machine: local engine, demo workflows, SigV4-checked app."""
import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# More local IAM principals besides the default key, so access rules by IAM caller can be tried:
# access key -> (secret key, the user or assumed-role session ARN API Gateway would report).
# LOCAL_IAM_KEYS (the same shape, as JSON) replaces them.
LOCAL_IAM_IDENTITIES = {
    "approver": ["approver-secret", "arn:aws:sts::123456789012:assumed-role/approvers/ada"],
    "viewer": ["viewer-secret", "arn:aws:iam::123456789012:user/viewer"],
}


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--sfn-port", type=int, default=int(os.environ.get("SFN_PORT", 8083)))
    return parser.parse_args(argv)


def _stage_config(app, engine_url: str, state_machines: dict):
    """The 'local' stage from .chalice/config.json, pointed at this engine's demo machines."""
    from chalice.config import Config

    on_disk = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    variables = on_disk["stages"]["local"].setdefault("environment_variables", {})
    # The engine decides the ARNs; per-machine options (passCallerContext) come from the stage.
    configured = json.loads(variables.get("STATE_MACHINES") or "{}")
    variables["STATE_MACHINES"] = json.dumps(
        {name: {**configured.get(name, {}), **machine} for name, machine in state_machines.items()}
    )
    variables["SFN_ENDPOINT_URL"] = engine_url
    # Config.create() would treat the stage's variables as plain settings and drop them.
    return Config(
        chalice_stage="local",
        user_provided_params={"chalice_app": app, "app_name": on_disk["app_name"]},
        config_from_disk=on_disk,
    )


def local_iam_identities() -> dict:
    """The extra local access keys: LOCAL_IAM_KEYS (JSON) or the built-in demo ones."""
    raw = os.environ.get("LOCAL_IAM_KEYS")
    return {key: tuple(value) for key, value in (json.loads(raw) if raw else LOCAL_IAM_IDENTITIES).items()}


def _auth_mode() -> str:
    return (os.environ.get("AUTH_MODE") or "iam").strip().lower()


def start_issuer(host: str):
    """With AUTH_MODE=jwt: start the dev OIDC issuer and point the JWT authorizer's settings at it."""
    # With JWT_ISSUER already set, the authorizer trusts that issuer (your own IdP, or a test's).
    if _auth_mode() != "jwt" or os.environ.get("JWT_ISSUER"):
        return None
    from local.issuer import DevIssuer

    issuer = DevIssuer(host=host).start()
    os.environ.update(JWT_ISSUER=issuer.issuer, JWT_AUDIENCE=issuer.audience)
    return issuer


def start_stack(host: str, port: int, sfn_port: int, access_key: str, secret_key: str, region: str,
                identities: dict | None = None):
    """Start the engine, create the demo workflows and build the app's server (not yet serving)."""
    from local.engine import LocalEngine
    from local.server import make_server

    engine = LocalEngine(host=host, port=sfn_port).start()
    try:
        state_machines = engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
        # The gateway's boto3 client signs its calls to the engine with these.
        os.environ.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, AWS_DEFAULT_REGION=region)
        os.environ.pop("AWS_PROFILE", None)
        from app import app

        server = make_server(
            app, _stage_config(app, engine.url, state_machines), host, port,
            access_key=access_key, secret_key=secret_key, region=region, identities=identities,
        )
    except BaseException:
        engine.stop()
        raise
    return engine, server


def _banner(url: str, access_key: str, secret_key: str, region: str, engine_url: str, machines) -> str:
    sigv4 = f'--aws-sigv4 "aws:amz:{region}:execute-api" --user {access_key}:{secret_key}'
    start_body = '{"stateMachine": "hello", "input": {"name": "Ada"}}'
    return f"""
sfn-gateway is running at {url}   (local Step Functions engine: {engine_url})
Demo state machines: {', '.join(machines)}
Requests must be SigV4-signed for service execute-api, region {region},
access key {access_key!r}, secret key {secret_key!r}  (GET /health needs no signature).

curl:
  curl -s {sigv4} -H 'Content-Type: application/json' \\
       -d '{start_body}' {url}/executions
  curl -s {sigv4} {url}/executions/<executionArn from the answer>

awscurl:
  awscurl --service execute-api --region {region} --access_key {access_key} --secret_key {secret_key} \\
          -X POST -d '{start_body}' {url}/executions

Python:
  python -c "import requests; from requests_aws4auth import AWS4Auth; \\
print(requests.post('{url}/executions', json={{'stateMachine': 'hello', 'input': {{'name': 'Ada'}}}}, \\
auth=AWS4Auth('{access_key}', '{secret_key}', '{region}', 'execute-api')).json())"

Ctrl-C stops everything.
"""


def _iam_keys_banner(identities: dict) -> str:
    lines = [f"  {key}:{secret}  ->  {arn}" for key, (secret, arn) in identities.items()]
    return "More local IAM callers (access key:secret -> identity), for ACCESS_RULES by caller:\n" + "\n".join(lines) + "\n"


def _jwt_banner(url: str, issuer, tokens: dict) -> str:
    from local.issuer import DEMO_USERS

    start_body = '{"stateMachine": "hello", "input": {"name": "Ada"}}'
    users = "\n".join(
        f"  {user} (groups {info['groups']}, scopes {info['scopes']}):\n    export {user.upper()}_TOKEN='{tokens[user]}'"
        for user, info in DEMO_USERS.items()
    )
    return f"""
AUTH_MODE=jwt: every route but /health needs "Authorization: Bearer <token>", verified by the
gateway's JWT authorizer against the dev issuer {issuer.issuer} (JWKS {issuer.url}/jwks.json,
audience {issuer.audience!r}). Demo tokens, valid 12 hours:
{users}

curl:
  curl -s -H "Authorization: Bearer $ADA_TOKEN" -H 'Content-Type: application/json' \\
       -d '{start_body}' {url}/executions
  curl -s -H "Authorization: Bearer $BOB_TOKEN" {url}/state-machines
  curl -si {url}/state-machines        # no token -> 401

Try access rules, e.g.:
  ACCESS_RULES='[{{"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]}},
                 {{"callers": ["bob"], "stateMachines": ["hello"], "operations": ["read"]}}]' AUTH_MODE=jwt make run
"""


def _stop_on_signal(signum, frame):
    # A process group's SIGTERM can arrive twice (e.g. from a wrapper that forwards
    # it); ignore the rest so shutdown itself is not interrupted.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv=None) -> int:
    """Run the local stack until Ctrl-C or SIGTERM."""
    args = _arguments(argv)
    from chalicelib.errors import GatewayMisconfigured

    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt for it.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    identities = local_iam_identities()
    issuer = None
    try:
        issuer = start_issuer(args.host)
        engine, server = start_stack(args.host, args.port, args.sfn_port, access_key, secret_key, region, identities)
    except OSError as err:
        if issuer is not None:
            issuer.stop()
        print(f"Could not start the local stack: {err} (set PORT / SFN_PORT to free ports)", file=sys.stderr)
        return 1
    except GatewayMisconfigured as err:
        # e.g. AUTH_MODE=cognito without COGNITO_USER_POOL_ARNS: app.py refuses to build its API.
        if issuer is not None:
            issuer.stop()
        print(f"Could not start the local stack: {err}", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    machines = json.loads(os.environ["STATE_MACHINES"])
    if _auth_mode() == "iam":
        banner = _banner(url, access_key, secret_key, region, engine.url, machines)
        print(banner.replace("Ctrl-C stops everything.", _iam_keys_banner(identities) + "\nCtrl-C stops everything."), flush=True)
    else:
        print(f"sfn-gateway is running at {url}   (local Step Functions engine: {engine.url})", flush=True)
        if issuer is not None:
            print(_jwt_banner(url, issuer, issuer.demo_tokens()), flush=True)
        elif _auth_mode() == "jwt":
            print(f"AUTH_MODE=jwt: bearer tokens are verified against {os.environ['JWT_ISSUER']}.", flush=True)
        else:
            print("AUTH_MODE=cognito: chalice local does NOT verify Cognito token signatures; it only decodes "
                  "them. Nothing here is authenticated; use the iam or jwt mode to try authentication.", flush=True)
        print("Ctrl-C stops everything.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        engine.stop()
        if issuer is not None:
            issuer.stop()
    print("sfn-gateway stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
