"""`make run`: the whole gateway on this machine: local engine, demo workflows, SigV4-checked app."""
import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from local.state import PROJECT_DIR, shown
# The key pair the local stack accepts when the shell sets none; it is no secret.
LOCAL_DEFAULT_KEY = "testing"
# More local IAM principals besides the default key, so access rules by IAM caller can be tried:
# access key -> (secret key, the user or assumed-role session ARN API Gateway would report).
# LOCAL_IAM_KEYS (the same shape, as JSON) replaces them.
LOCAL_IAM_IDENTITIES = {
    "approver": ["approver-secret", "arn:aws:sts::123456789012:assumed-role/approvers/ada"],
    "viewer": ["viewer-secret", "arn:aws:iam::123456789012:user/viewer"],
}
# After Ctrl-C or SIGTERM the stack is gone within this many seconds, however busy it is: webhook
# deliveries still running get what is left of it, then are abandoned. Teardowns of tests and
# benchmarks wait 10 s.
STOP_GRACE_SECONDS = 5.0
# The shell settings that would otherwise pick a region for the local stack.
_REGION_SETTINGS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE")


class LocalStackError(Exception):
    """The local stack cannot start as configured; the message says what to change."""


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--sfn-port", type=int, default=int(os.environ.get("SFN_PORT", 8083)))
    parser.add_argument("--webhook-port", type=int, default=int(os.environ.get("WEBHOOK_PORT", 0)),
                        help="port of the demo webhook receiver (default: any free port)")
    return parser.parse_args(argv)


def _config_on_disk() -> dict:
    return json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())


def stack_region(on_disk: dict) -> str:
    """The one region the local stack runs in: the region of the local stage's state machine ARNs."""
    from chalicelib.stepfunctions.settings import parse_state_machines
    from chalicelib.errors import GatewayMisconfigured
    from local.engine import REGION

    raw = on_disk["stages"]["local"].get("environment_variables", {}).get("STATE_MACHINES")
    if not raw:
        return REGION
    try:
        machines = parse_state_machines(raw)
    except GatewayMisconfigured as err:
        raise LocalStackError(f".chalice/config.json, stage local: {err}") from err
    # arn:<partition>:states:<region>:... (the generic ARN layout)
    regions = sorted({machine.arn.split(":")[3] for machine in machines})
    if len(regions) > 1:
        raise LocalStackError(
            f".chalice/config.json, stage local: STATE_MACHINES names ARNs in {len(regions)} regions "
            f"({', '.join(regions)}); the local stack runs in one region: use one in every ARN.")
    return regions[0]


def stage_webhooks(on_disk: dict) -> list:
    """The local stage's own WEBHOOKS entries, as written (make run adds the demo receiver's beside them)."""
    raw = on_disk["stages"]["local"].get("environment_variables", {}).get("WEBHOOKS")
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise LocalStackError(f".chalice/config.json, stage local: WEBHOOKS is not valid JSON ({err}).") from err
    if not isinstance(entries, list):
        raise LocalStackError(".chalice/config.json, stage local: WEBHOOKS must be a JSON list of subscriptions.")
    return entries


def _check_stage(variables: dict) -> None:
    # The app reads its settings at the first request; a mistake in the stage should stop
    # `make run` at once, naming where it is.
    from chalicelib.config import config_from_environ
    from chalicelib.errors import GatewayMisconfigured

    try:
        config_from_environ(variables)
    except GatewayMisconfigured as err:
        raise LocalStackError(f".chalice/config.json, stage local: {err}") from err


def _stage_config(app, engine_url: str, state_machines: dict, overrides: dict | None = None):
    """The 'local' stage from .chalice/config.json, pointed at this engine, plus demo machines it lacks."""
    from chalice.config import Config

    on_disk = _config_on_disk()
    variables = on_disk["stages"]["local"].setdefault("environment_variables", {})
    # The stage's own entries are served as written; a demo workflow it does not list is added.
    configured = json.loads(variables.get("STATE_MACHINES") or "{}")
    listed_arns = {entry.get("arn") for entry in configured.values() if isinstance(entry, dict)}
    added = {name: machine for name, machine in state_machines.items()
             if name not in configured and machine["arn"] not in listed_arns}
    variables["STATE_MACHINES"] = json.dumps({**configured, **added})
    variables["SFN_ENDPOINT_URL"] = engine_url
    variables.update(overrides or {})
    # Config.create() would treat the stage's variables as plain settings and drop them.
    return Config(
        chalice_stage="local",
        user_provided_params={"chalice_app": app, "app_name": on_disk["app_name"]},
        config_from_disk=on_disk,
    )


def _use_only_the_stacks_aws_settings(access_key: str, secret_key: str, region: str | None = None) -> None:
    # Every boto3 client in this process (moto's own at import, the engine's, the app's)
    # must use the stack's region and key. A shell's profile (even a missing one: moto's
    # import then fails), config file, region or FIPS / dual-stack switch would not.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    if region:
        # The app reads AWS_REGION first (as in Lambda), botocore AWS_DEFAULT_REGION.
        os.environ.update(AWS_REGION=region, AWS_DEFAULT_REGION=region)


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

    from local.code_flow import INBOX_CLIENT_ID

    issuer = DevIssuer(host=host).start()
    issuer.publish()
    os.environ.update(JWT_ISSUER=issuer.issuer, JWT_AUDIENCE=issuer.audience)
    os.environ.setdefault("INBOX_CLIENT_ID", INBOX_CLIENT_ID)
    return issuer


DEFAULT_STAGE_SECRET_PARAMETER = "/sfn-gateway/local/stage-secret"


def create_stage_secret(engine_url: str, region: str) -> dict:
    """Put a fresh stage secret (SecureString) on the engine's SSM; the stage variables that find it."""
    import secrets

    import boto3

    parameter = (_config_on_disk()["stages"]["local"].get("environment_variables", {}).get("STAGE_SECRET_PARAMETER")
                 or DEFAULT_STAGE_SECRET_PARAMETER)
    ssm = boto3.client("ssm", endpoint_url=engine_url, region_name=region)
    # New on every start: owner tags and Idempotency-Key names of a previous run no longer match, as
    # after a secret rotation in AWS (docs/identity.md).
    ssm.put_parameter(Name=parameter, Value=secrets.token_urlsafe(48), Type="SecureString", Overwrite=True)
    # botocore reads AWS_ENDPOINT_URL_SSM itself: the app's SSM client then asks the engine.
    return {"STAGE_SECRET_PARAMETER": parameter, "AWS_ENDPOINT_URL_SSM": engine_url}


def _stop_issuer(issuer) -> None:
    if issuer is not None:
        issuer.unpublish()
        issuer.stop()


# What chalice local does on a Cognito route (chalice/local.py, LocalGatewayAuthorizer), so the user
# knows what is not being tried.
COGNITO_LOCALLY = (
    "Locally no user pool is contacted: chalice local decodes a bearer token's claims without checking its "
    "signature, issuer, audience or expiry, and lets requests without one through (docs/identity.md)."
)


def check_auth_settings(environ) -> None:
    """Refuse, before anything starts, an AUTH_MODE whose own settings are missing."""
    from chalicelib.errors import GatewayMisconfigured
    from chalicelib.auth.identity import auth_mode, cognito_user_pool_arns

    try:
        if auth_mode(environ) == "cognito":
            cognito_user_pool_arns(environ)
    except GatewayMisconfigured as err:
        example = ""
        if (environ.get("AUTH_MODE") or "").strip().lower() == "cognito":
            example = (" Any pool ARN will do locally, e.g. AUTH_MODE=cognito COGNITO_USER_POOL_ARNS="
                       "'[\"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123\"]' make run. "
                       + COGNITO_LOCALLY)
        raise LocalStackError(str(err).removeprefix("Invalid gateway configuration: ") + example) from err


def _deploy_state_machines(engine) -> dict:
    from local.engine import InvalidStateMachineFile

    try:
        return engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
    except InvalidStateMachineFile as err:
        raise LocalStackError(f"{shown(err.path)}: {err.detail}") from err


def start_partner_gate():
    """With USAGE_PLANS: each plan's key (kept in .local/api-keys.json) and the gate checking them; (gate, path)."""
    from chalicelib.partners.plans import parse_usage_plans
    from local.partners import KEYS_FILE, PartnerGate, ensure_api_keys, local_key_id
    from local.state import state_path

    plans = parse_usage_plans(os.environ.get("USAGE_PLANS"))
    if not plans:
        return None, None
    keys = ensure_api_keys(plans)
    # What `make package` fills in from the real keys' ids: the access log names the plan.
    os.environ["API_KEY_PLANS"] = json.dumps({local_key_id(plan.name): plan.name for plan in plans})
    return PartnerGate(plans, keys), state_path(KEYS_FILE)
def open_inbox(issuer, app, port: int) -> str | None:
    """Let the dev issuer sign people in to the inbox page; the page's URL, or None when the stage has none."""
    if issuer is None or "/inbox" not in app.routes:
        return None
    # Both loopback names: the issuer checks the page's address exactly, as a real IdP does.
    pages = [f"http://127.0.0.1:{port}/inbox", f"http://localhost:{port}/inbox"]
    issuer.code_flow.register_client(os.environ["INBOX_CLIENT_ID"], pages)
    return pages[0]


def _inbox_banner(inbox_url: str) -> str:
    from local.issuer import DEMO_USERS

    users = " or ".join(DEMO_USERS)
    first = next(iter(DEMO_USERS))
    return f"""
Approvals inbox: {inbox_url}
  Sign in there as {users} (the dev issuer's sign-in page), or go straight in as one of them:
  {inbox_url}?login_hint={first}
"""


def start_stack(host: str, port: int, sfn_port: int, access_key: str, secret_key: str, region: str,
                identities: dict | None = None, webhook_port: int | None = None):
    """Start the engine, create the demo workflows and build the app's server (not yet serving)."""
    _use_only_the_stacks_aws_settings(access_key, secret_key, region)
    from local.engine import LocalEngine
    from local.server import make_server

    engine = LocalEngine(host=host, port=sfn_port, region=region).start()
    webhooks = approvals = None
    try:
        state_machines = _deploy_state_machines(engine)
        overrides = dict(create_stage_secret(engine.url, region))
        if webhook_port is not None:
            from local.events import DemoWebhooks, LocalWebhookSecretError

            try:
                webhooks = DemoWebhooks(engine.url, state_machines, webhook_port, os.environ.get("WEBHOOK_URL"),
                                        region, configured=stage_webhooks(_config_on_disk()))
            except LocalWebhookSecretError as err:
                raise LocalStackError(str(err)) from err
            overrides.update(webhooks.variables)
        if _approvals_wanted():
            from local.approvals import LocalApprovals

            approvals = LocalApprovals(engine.url, region)
            overrides.update(approvals.variables)
        # As chalice local does: the stage's variables are in place before app.py is imported, because
        # the webhooks' event rule, the approvals' queue and rule and USAGE_PLANS are read from them then.
        variables = _stage_config(None, engine.url, state_machines, overrides).environment_variables
        _check_stage(variables)
        if webhooks:
            webhooks.create_missing_secrets()
        os.environ.update(variables)
        partner_gate, keys_path = start_partner_gate()
        from app import app

        server = make_server(
            app, _stage_config(app, engine.url, state_machines, overrides), host, port,
            access_key=access_key, secret_key=secret_key, region=region, identities=identities,
            partner_gate=partner_gate,
        )
        server.webhooks = webhooks
        server.approvals = approvals
        server.api_keys_path = keys_path
        if webhooks:
            webhooks.attach(sys.modules["app"])
        if approvals:
            approvals.attach(sys.modules["app"])
    except BaseException:
        if webhooks:
            webhooks.stop()
        if approvals:
            approvals.stop()
        engine.stop()
        raise
    return engine, server


def _approvals_wanted() -> bool:
    # On unless the shell says APPROVALS=off: the demo approval workflow then only waits for its token.
    return (os.environ.get("APPROVALS") or "on").strip().lower() != "off"


def _banner(url: str, access_key: str, secret_key: str, region: str, engine_url: str, machines,
            python: str = "python", ignored: dict | None = None) -> str:
    if secret_key == LOCAL_DEFAULT_KEY:
        key_text = f"access key {access_key!r}, secret key {secret_key!r}"
        user = shlex.quote(f"{access_key}:{secret_key}")
        shell_secret, python_secret, python_imports = shlex.quote(secret_key), repr(secret_key), ""
    else:
        # A key from the shell may be a real one: the commands read it from the shell again.
        key_text = f"access key {access_key!r}, secret key taken from AWS_SECRET_ACCESS_KEY (not shown)"
        user = f'"{access_key}:$AWS_SECRET_ACCESS_KEY"'
        shell_secret, python_secret, python_imports = '"$AWS_SECRET_ACCESS_KEY"', "os.environ['AWS_SECRET_ACCESS_KEY']", "os, "
    auth = f"AWS4Auth('{access_key}', {python_secret}, '{region}', 'execute-api')"
    sigv4 = f'--aws-sigv4 "aws:amz:{region}:execute-api" --user {user}'
    start_body = '{"stateMachine": "hello", "input": {"name": "Ada"}}'
    not_used = ""
    if ignored:
        settings = ", ".join(f"{name}={value}" for name, value in ignored.items())
        not_used = f"\nNot used from your shell: {settings} (the stack runs in the local stage's region).\n"
    return f"""
sfn-gateway is running at {url}   (local Step Functions engine: {engine_url})
Stage local (.chalice/config.json), region {region}; state machines: {', '.join(machines)}
Requests must be SigV4-signed for service execute-api, region {region},
{key_text}  (GET /health needs no signature).
{not_used}
curl (start hello and wait up to 10 s for its result; then list the executions):
  curl -s {sigv4} -H 'Content-Type: application/json' \\
       -d '{start_body}' '{url}/executions?wait=10'
  curl -s {sigv4} '{url}/executions?stateMachine=hello'
  # Paths holding an ARN (/executions/<executionArn>...) need curl 8.14 or later: older curl signs
  # them un-encoded, which API Gateway (and this server) refuse with 403. Use Python for those.

sfn-gateway CLI (`make client` installs it into .venv; see docs/client.md):
  export SFN_GATEWAY_URL={url} AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={shell_secret} AWS_REGION={region}
  .venv/bin/sfn-gateway start hello --input '{{"name": "Ada"}}' --wait 10
  .venv/bin/sfn-gateway history <executionArn> --follow

awscurl:
  awscurl --service execute-api --region {region} --access_key {access_key} --secret_key {shell_secret} \\
          -X POST -d '{start_body}' {url}/executions

Python (the project's virtualenv has requests and requests-aws4auth):
  {python} -c "import {python_imports}requests; from requests_aws4auth import AWS4Auth; \\
print(requests.post('{url}/executions?wait=10', json={{'stateMachine': 'hello', 'input': {{'name': 'Ada'}}}}, \\
auth={auth}).json())"

Approval (a task waiting for its token): start it, read the token from its history (the
TaskScheduled event), answer it through /tasks/success (or /tasks/failure):
  ARN=$(curl -s {sigv4} -H 'Content-Type: application/json' \\
        -d '{{"stateMachine": "approval", "input": {{"amount": 10}}}}' {url}/executions \\
        | {python} -c "import json, sys; print(json.load(sys.stdin)['executionArn'])")
  TOKEN=$({python} -c "import {python_imports}sys, time, requests; from urllib.parse import quote; \\
from requests_aws4auth import AWS4Auth; history = lambda: requests.get('{url}/executions/' \\
+ quote(sys.argv[1], safe='') + '/history?reverse=true', auth={auth}).json()['events']; \\
print(next(event['taskScheduledEventDetails']['parameters']['MessageBody']['taskToken'] \\
for _ in range(50) if not time.sleep(0.1) for event in history() if event['type'] == 'TaskScheduled'))" "$ARN")
  curl -s {sigv4} -H 'Content-Type: application/json' \\
       -d "{{\\"taskToken\\": \\"$TOKEN\\", \\"output\\": {{\\"approved\\": true}}}}" {url}/tasks/success

Ctrl-C stops everything.
"""


def _python_command() -> str:
    # The interpreter running the stack has requests and requests-aws4auth (.venv/bin/python
    # under `make run`); a bare `python` may not.
    executable = Path(sys.executable)
    try:
        return shlex.quote(str(executable.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(executable))


def _iam_keys_banner(identities: dict) -> str:
    lines = [f"  {key}:{secret}  ->  {arn}" for key, (secret, arn) in identities.items()]
    return "More local IAM callers (access key:secret -> identity), for ACCESS_RULES by caller:\n" + "\n".join(lines) + "\n"


def _jwt_banner(url: str, issuer, tokens: dict, python: str = "python") -> str:
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

A token for any caller, group, scope or expiry (signed by this issuer while it runs; its key is in
{issuer.record}, readable by you only):
  TOKEN=$({python} -m local.issuer token --sub carol --groups approvers,ops --scopes "orders/start orders/read" \\
          --expires-in 3600)      # --expires-in -60: an expired one

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
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", LOCAL_DEFAULT_KEY)
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", LOCAL_DEFAULT_KEY)
    ignored = {name: os.environ[name] for name in _REGION_SETTINGS if os.environ.get(name)}
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt for it.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    _use_only_the_stacks_aws_settings(access_key, secret_key)
    from chalicelib.errors import GatewayMisconfigured

    identities = local_iam_identities()
    issuer = None
    try:
        on_disk = _config_on_disk()
        check_auth_settings({**os.environ, **on_disk["stages"]["local"].get("environment_variables", {})})
        region = stack_region(on_disk)
        issuer = start_issuer(args.host)
        engine, server = start_stack(args.host, args.port, args.sfn_port, access_key, secret_key, region, identities,
                                     args.webhook_port)
    except (LocalStackError, GatewayMisconfigured) as err:
        # GatewayMisconfigured: a setting app.py checks as it is built (e.g. a JWT stage without an issuer).
        _stop_issuer(issuer)
        print(f"Could not start the local stack: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        _stop_issuer(issuer)
        print(f"Could not start the local stack: {err} (set PORT / SFN_PORT to free ports)", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    machines = json.loads(os.environ["STATE_MACHINES"])
    if _auth_mode() == "iam":
        banner = _banner(url, access_key, secret_key, region, engine.url, machines,
                         python=_python_command(), ignored=ignored)
        print(banner.replace("Ctrl-C stops everything.", _iam_keys_banner(identities) + "\nCtrl-C stops everything."),
              flush=True)
    else:
        print(f"sfn-gateway is running at {url}   (local Step Functions engine: {engine.url})", flush=True)
        if issuer is not None:
            print(_jwt_banner(url, issuer, issuer.demo_tokens(), _python_command()), flush=True)
            inbox_url = open_inbox(issuer, sys.modules["app"].app, port)
            if inbox_url:
                print(_inbox_banner(inbox_url), flush=True)
        elif _auth_mode() == "jwt":
            print(f"AUTH_MODE=jwt: bearer tokens are verified against {os.environ['JWT_ISSUER']}.", flush=True)
        else:
            print(f"AUTH_MODE=cognito: nothing here is authenticated. {COGNITO_LOCALLY} Use AUTH_MODE=jwt "
                  "(a real token check against a dev issuer) or iam to try authentication.", flush=True)
        print("Ctrl-C stops everything.", flush=True)
    if server.webhooks:
        print(server.webhooks.banner(), flush=True)
    if server.approvals:
        print(server.approvals.banner(url), flush=True)
    if server.api_keys_path:
        from local.state import shown

        print(f"USAGE_PLANS: every route but /health also needs the header x-api-key: <key of a plan>; the keys "
              f"(one per plan, kept across restarts) are in {shown(server.api_keys_path)}.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        watchdog = _exit_anyway_at(deadline)
        server.server_close()
        if server.approvals:
            server.approvals.stop()
        if server.webhooks:
            # What is left of the grace period, less a second for the engine and the issuer.
            server.webhooks.stop(grace=max(0.0, deadline - time.monotonic() - 1))
        engine.stop()
        _stop_issuer(issuer)
        watchdog.cancel()
    print("sfn-gateway stopped.", flush=True)
    return 0


def _exit_anyway_at(deadline: float) -> threading.Timer:
    def exit_now():
        print(f"sfn-gateway: still stopping after {STOP_GRACE_SECONDS:g} s; exiting anyway.", file=sys.stderr,
              flush=True)
        os._exit(1)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), exit_now)
    watchdog.daemon = True
    watchdog.start()
    return watchdog


def _exit_without_waiting_for_threads(code: int) -> None:
    # The interpreter's exit would wait for every worker thread (webhook deliveries, executions
    # in the engine); all that the stack owns is stopped, so what still runs is abandoned, as
    # Lambda abandons work when it is shut down.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_without_waiting_for_threads(main())
