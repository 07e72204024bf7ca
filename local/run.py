"""`make run`: the whole gateway on this machine: local engine, demo workflows, SigV4-checked app."""
import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--sfn-port", type=int, default=int(os.environ.get("SFN_PORT", 8083)))
    parser.add_argument("--webhook-port", type=int, default=int(os.environ.get("WEBHOOK_PORT", 0)),
                        help="port of the demo webhook receiver (default: any free port)")
    return parser.parse_args(argv)


def _stage_config(app, engine_url: str, state_machines: dict, overrides: dict | None = None):
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
    variables.update(overrides or {})
    # Config.create() would treat the stage's variables as plain settings and drop them.
    return Config(
        chalice_stage="local",
        user_provided_params={"chalice_app": app, "app_name": on_disk["app_name"]},
        config_from_disk=on_disk,
    )


def start_stack(host: str, port: int, sfn_port: int, access_key: str, secret_key: str, region: str,
                webhook_port: int | None = None):
    """Start the engine, create the demo workflows and build the app's server (not yet serving)."""
    from local.engine import LocalEngine
    from local.server import make_server

    engine = LocalEngine(host=host, port=sfn_port).start()
    webhooks = None
    try:
        state_machines = engine.deploy_demo_state_machines(str(PROJECT_DIR / "statemachines"))
        # The gateway's boto3 client signs its calls to the engine with these.
        os.environ.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, AWS_DEFAULT_REGION=region)
        os.environ.pop("AWS_PROFILE", None)
        if webhook_port is not None:
            from local.events import DemoWebhooks

            webhooks = DemoWebhooks(engine.url, state_machines, webhook_port, os.environ.get("WEBHOOK_URL"))
            # As chalice local does: the stage's variables are in place before app.py is
            # imported, because the webhooks event rule is built from them.
            os.environ.update(_stage_config(None, engine.url, state_machines, webhooks.variables).environment_variables)
        from app import app

        server = make_server(
            app, _stage_config(app, engine.url, state_machines, webhooks and webhooks.variables), host, port,
            access_key=access_key, secret_key=secret_key, region=region,
        )
        server.webhooks = webhooks
        if webhooks:
            webhooks.attach(sys.modules["app"])
    except BaseException:
        if webhooks:
            webhooks.stop()
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

sfn-gateway CLI (`make client` installs it into .venv; see docs/client.md):
  export SFN_GATEWAY_URL={url} AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={secret_key} AWS_REGION={region}
  .venv/bin/sfn-gateway start hello --input '{{"name": "Ada"}}' --wait 10
  .venv/bin/sfn-gateway history <executionArn> --follow

awscurl:
  awscurl --service execute-api --region {region} --access_key {access_key} --secret_key {secret_key} \\
          -X POST -d '{start_body}' {url}/executions

Python:
  python -c "import requests; from requests_aws4auth import AWS4Auth; \\
print(requests.post('{url}/executions', json={{'stateMachine': 'hello', 'input': {{'name': 'Ada'}}}}, \\
auth=AWS4Auth('{access_key}', '{secret_key}', '{region}', 'execute-api')).json())"

Ctrl-C stops everything.
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
    access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt for it.
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    try:
        engine, server = start_stack(args.host, args.port, args.sfn_port, access_key, secret_key, region, args.webhook_port)
    except OSError as err:
        print(f"Could not start the local stack: {err} (set PORT / SFN_PORT to free ports)", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    machines = json.loads(os.environ["STATE_MACHINES"])
    print(_banner(url, access_key, secret_key, region, engine.url, machines), flush=True)
    if server.webhooks:
        print(server.webhooks.banner(), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if server.webhooks:
            server.webhooks.stop()
        engine.stop()
    print("sfn-gateway stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
