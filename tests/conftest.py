"""Shared fixtures: a chalice test client on a test stage, and a stubbed Step Functions client."""
import importlib
import importlib.util
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from chalice.test import Client

from app import app
from chalicelib import factory
from chalicelib.config import get_config

ACCOUNT = "123456789012"
ORDERS_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:orders"
QUICK_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:quick"
OTHER_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:payroll"
TEST_STATE_MACHINES = {
    "orders": {"arn": ORDERS_ARN, "type": "STANDARD"},
    "quick": {"arn": QUICK_ARN, "type": "EXPRESS"},
}


def execution_arn(state_machine: str = "orders", name: str = "run-1") -> str:
    """An execution ARN of one of the test state machines."""
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{state_machine}:{name}"


def post_json(client, path, body, headers=None):
    """POST a JSON body (or raw text/bytes) through a chalice test client."""
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, body=raw, headers={"Content-Type": "application/json", **(headers or {})})


def assert_error(response, status, code):
    """The response is the gateway's error shape with this status and code."""
    assert response.status_code == status, response.body
    assert response.json_body["Code"] == code
    assert response.json_body["Message"]


@pytest.fixture(autouse=True)
def fresh_caches():
    """Configuration and clients are cached per process; every test starts clean."""
    get_config.cache_clear()
    factory.get_sfn_client.cache_clear()
    yield
    get_config.cache_clear()
    factory.get_sfn_client.cache_clear()


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials so botocore never looks for real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def make_client(tmp_path, aws_credentials):
    """Build a chalice test client whose 'test' stage has the given environment."""

    def build(state_machines=None, application=None, **environment):
        variables = {"STATE_MACHINES": json.dumps(state_machines or TEST_STATE_MACHINES)}
        variables.update(environment)
        chalice_dir = tmp_path / ".chalice"
        chalice_dir.mkdir(exist_ok=True)
        (chalice_dir / "config.json").write_text(
            json.dumps(
                {
                    "version": "2.0",
                    "app_name": "sfn-gateway",
                    "stages": {"test": {"environment_variables": variables}},
                }
            )
        )
        return Client(application or app, stage_name="test", project_dir=str(tmp_path))

    return build


@pytest.fixture
def stub(monkeypatch, aws_credentials):
    """A botocore Stubber on the client the app uses; every queued response must be used."""
    client = boto3.client("stepfunctions", region_name="us-east-1")
    with Stubber(client) as stubber:
        monkeypatch.setattr(factory, "get_sfn_client", lambda read_timeout=None: client)
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def client(make_client):
    """A chalice test client on the default test allow-list."""
    with make_client() as test_client:
        yield test_client


@pytest.fixture
def import_app(monkeypatch):
    """Import app.py anew under import-time stage variables (as chalice package/deploy/local do)."""
    from chalicelib.http import cors

    def build(**environment):
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        importlib.reload(cors)
        # A module of its own, so the app every other test imported keeps its globals.
        spec = importlib.util.spec_from_file_location("app_under_test", Path(__file__).parent.parent / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.app

    yield build
    monkeypatch.undo()
    importlib.reload(cors)
