"""Fixtures for the approvals inbox: an in-process DynamoDB table (moto) and callers."""
import datetime
import json

import boto3
import pytest
from moto import mock_aws

from chalicelib.approvals.store import ApprovalStore, table_definition
from chalicelib.config import config_from_environ
from tests.conftest import ACCOUNT, ORDERS_ARN, QUICK_ARN, execution_arn

TABLE = "approvals-test"
PAYROLL_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:payroll"
MACHINES = {
    "orders": {"arn": ORDERS_ARN, "type": "STANDARD"},
    "payroll": {"arn": PAYROLL_ARN, "type": "STANDARD"},
    "quick": {"arn": QUICK_ARN, "type": "EXPRESS"},
}
ADA = {"type": "jwt", "id": "ada", "groups": ["approvers"], "scopes": []}
BOB = {"type": "jwt", "id": "bob", "groups": ["developers"], "scopes": []}
CAROL = {"type": "jwt", "id": "carol", "groups": ["approvers"], "scopes": []}
# ada and carol may approve orders; only carol payroll; bob nothing.
RULES = [
    {"callers": ["ada"], "stateMachines": ["orders"], "operations": ["approve"]},
    {"callers": ["carol"], "stateMachines": ["orders", "payroll"], "operations": ["approve"]},
    {"callers": ["bob"], "stateMachines": ["orders"], "operations": ["read"]},
]
TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf+token/with+slashes=="


def config_with(rules=RULES):
    environ = {"STATE_MACHINES": json.dumps(MACHINES)}
    if rules is not None:
        environ["ACCESS_RULES"] = json.dumps(rules)
    return config_from_environ(environ)


def message(**fields) -> str:
    """An approvals-queue message body following the contract."""
    body = {
        "taskToken": TOKEN,
        "executionArn": execution_arn("orders", "refund-42"),
        "title": "Refund 120 EUR",
        "details": {"amount": 120, "currency": "EUR"},
        "candidateGroups": ["approvers"],
        "candidateUsers": [],
        "timeoutSeconds": 3600,
    }
    body.update(fields)
    return json.dumps({key: value for key, value in body.items() if value is not None})


class Clock:
    """A settable UTC clock."""

    def __init__(self):
        self.now = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)

    def __call__(self):
        return self.now

    def tick(self, seconds=1):
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def dynamodb(aws_credentials):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_definition(TABLE))
        yield client


@pytest.fixture
def store(dynamodb):
    return ApprovalStore(dynamodb, TABLE)


@pytest.fixture
def clock():
    return Clock()
