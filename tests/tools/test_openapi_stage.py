"""`make openapi STAGE=...`: each stage's OpenAPI 3.1 document, and a client generated from it calling the local stack."""
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from openapi_spec_validator import validate

from tests.test_end_to_end import ACCESS_KEY, REGION, SECRET_KEY, Stack
from tools import openapi, policy

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONFIG = policy.load_config()
PARTNER_CONFIG = {**CONFIG, "stages": {**CONFIG["stages"],
                                       **json.loads((PROJECT_DIR / "docs" / "partner-stages.json").read_text())}}


def _nullable_left(node) -> bool:
    if isinstance(node, dict):
        return "nullable" in node or any(_nullable_left(value) for value in node.values())
    if isinstance(node, list):
        return any(_nullable_left(item) for item in node)
    return False


@pytest.mark.parametrize("stage", sorted(CONFIG["stages"]))
def test_every_stages_document_is_valid_openapi_3_1(stage):
    document = openapi.stage_document(CONFIG, stage)
    validate(document)
    assert document["openapi"] == "3.1.0" and not _nullable_left(document)


def test_the_start_body_is_a_one_of_over_the_stages_machines_with_their_input_schemas():
    document = openapi.stage_document(CONFIG, "dev")
    body = document["paths"]["/executions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"oneOf": [{"$ref": "#/components/schemas/StartOrdersRequest"}],
                    "discriminator": {"propertyName": "stateMachine",
                                      "mapping": {"orders": "#/components/schemas/StartOrdersRequest"}}}
    schemas = document["components"]["schemas"]
    variant = schemas["StartOrdersRequest"]
    assert variant["properties"]["stateMachine"]["enum"] == [
        "orders", "arn:aws:states:us-east-1:123456789012:stateMachine:orders-dev"]
    assert variant["properties"]["input"]["$ref"] == "#/components/schemas/OrdersInput"
    configured = json.loads(policy.stage_environment(CONFIG, "dev")["STATE_MACHINES"])["orders"]["inputSchema"]
    assert schemas["OrdersInput"] == configured
    # dev has no EXPRESS machine: /sync-executions keeps the general body.
    sync = document["paths"]["/sync-executions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert sync == {"$ref": "#/components/schemas/StartExecutionRequest"}


def test_sync_executions_offers_only_express_machines_and_executions_only_standard_ones():
    document = openapi.stage_document(CONFIG, "local")
    bodies = {path: document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
              for path in ("/executions", "/sync-executions")}
    assert sorted(bodies["/executions"]["discriminator"]["mapping"]) == ["approval", "hello", "slow"]
    assert sorted(bodies["/sync-executions"]["discriminator"]["mapping"]) == ["echo-express"]


def test_a_partner_stage_has_its_wait_maximum_and_api_keys_on_every_route_but_health():
    document = openapi.stage_document(PARTNER_CONFIG, "orders-partners")
    validate(document)
    assert document["components"]["parameters"]["Wait"]["schema"]["maximum"] == 116
    assert document["components"]["securitySchemes"]["api_key"]["name"] == "x-api-key"
    throttled = document["components"]["responses"]["TooManyRequests"]["content"]["application/json"]["schema"]
    assert throttled["oneOf"][0] == {"$ref": "#/components/schemas/ApiGatewayError"}
    security = {(path, method): operation.get("security") for path, operations in document["paths"].items()
                for method, operation in operations.items()}
    assert security.pop(("/health", "get")) == []  # openapi.yaml: explicitly no authentication
    assert security and all(value == [{"sigv4": [], "api_key": []}] for value in security.values())


def test_references_inside_an_input_schema_point_into_its_component():
    stage = {"environment_variables": {"STATE_MACHINES": json.dumps({"orders": {
        "arn": "arn:aws:states:us-east-1:123456789012:stateMachine:orders",
        "inputSchema": {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"sku": {"type": "string"}},
                        "type": "object", "properties": {"sku": {"$ref": "#/definitions/sku"}}}}})}}
    document = openapi.stage_document({"app_name": "sfn-gateway", "stages": {"refs": stage}}, "refs")
    validate(document)
    schema = document["components"]["schemas"]["OrdersInput"]
    assert "$schema" not in schema
    assert schema["properties"]["sku"] == {"$ref": "#/components/schemas/OrdersInput/definitions/sku"}


def test_the_command_writes_the_file_and_make_openapi_runs_it(tmp_path, capsys):
    out = tmp_path / "openapi-dev.json"
    assert openapi.main(["--stage", "dev", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["info"]["title"] == "sfn-gateway (dev)"
    assert openapi.main(["--stage", "nope"]) == 2
    assert "Stage 'nope' is not in .chalice/config.json" in capsys.readouterr().err
    planned = subprocess.run(["make", "-n", "--no-print-directory", "openapi", "STAGE=dev"], cwd=PROJECT_DIR,
                             capture_output=True, text=True, timeout=30)
    assert "-m tools.openapi --stage dev" in planned.stdout


# --- a typed client generated from the local stage's document, against the local stack ---------


class _SigV4(httpx.Auth):
    """Signs each httpx request with botocore's SigV4 signer for execute-api."""

    requires_request_body = True

    def auth_flow(self, request):
        signed = AWSRequest(method=request.method, url=str(request.url), data=request.content,
                            headers={"Content-Type": request.headers.get("content-type", "")})
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "execute-api", REGION).add_auth(signed)
        request.headers.update({name: value for name, value in signed.headers.items()
                                if name.lower() in ("authorization", "x-amz-date")})
        yield request


@pytest.fixture(scope="module")
def typed_client_package(tmp_path_factory):
    """The package openapi-python-client generates from `make openapi STAGE=local`, imported."""
    root = tmp_path_factory.mktemp("typed-client")
    spec = root / "openapi-local.json"
    assert openapi.main(["--stage", "local", "--out", str(spec)]) == 0
    tool = Path(sys.executable).parent / "openapi-python-client"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(tool), "generate", "--path", str(spec), "--output-path", str(root / "sfn_typed"),
                           "--meta", "none"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("sfn_typed")
    finally:
        sys.path.remove(str(root))


@pytest.fixture(scope="module")
def stack():
    running = Stack()
    yield running
    running.stop()


def test_a_generated_client_starts_and_refuses_typed_inputs_on_the_local_stack(typed_client_package, stack):
    from sfn_typed.api.executions import start_execution, start_sync_execution
    from sfn_typed.client import Client
    from sfn_typed.models import (
        SlowInput,
        StartedExecution,
        StartHelloRequest,
        StartHelloRequestStateMachine,
        StartSlowRequest,
        StartSlowRequestStateMachine,
        SyncStartEchoExpressRequest,
        SyncStartEchoExpressRequestStateMachine,
    )

    client = Client(base_url=stack.url, httpx_args={"auth": _SigV4()})
    started = start_execution.sync_detailed(client=client, body=StartHelloRequest(
        state_machine=StartHelloRequestStateMachine.HELLO, name="typed-client-1"))
    assert started.status_code == 201, started.content
    assert isinstance(started.parsed, StartedExecution)
    assert started.parsed.execution_arn.endswith(":execution:hello:typed-client-1")

    slow = StartSlowRequest(state_machine=StartSlowRequestStateMachine.SLOW, input_=SlowInput(seconds=-1))
    refused = start_execution.sync_detailed(client=client, body=slow)
    assert refused.status_code == 400
    assert refused.parsed.code.value == "InputSchemaViolation"
    assert [(error.pointer, error.message) for error in refused.parsed.errors] == [
        ("/seconds", "must be bigger than or equal to 0")]

    echoed = start_sync_execution.sync_detailed(client=client, body=SyncStartEchoExpressRequest(
        state_machine=SyncStartEchoExpressRequestStateMachine.ECHO_EXPRESS))
    assert echoed.status_code == 200, echoed.content
    assert echoed.parsed.status.value == "SUCCEEDED"
