"""Settings and path patterns accept a value exactly, never the value plus a trailing newline."""
import pytest

from chalicelib.auth import identity
from chalicelib.errors import InvalidArn
from chalicelib.http import cors
from chalicelib.partners import plans
from chalicelib.setting_rules import SSM_PARAMETER_NAME
from chalicelib.stepfunctions import registry
from chalicelib.webhooks import settings as webhook_settings

# Python's "$" also matches before a final "\n": a value that ends in one would pass as valid.
PATTERNS_AND_VALID_VALUES = [
    (registry.STATE_MACHINE_ARN, "arn:aws:states:us-east-1:123456789012:stateMachine:orders:live"),
    (registry._EXECUTION_ARN, "arn:aws:states:us-east-1:123456789012:execution:orders:run-1"),
    (registry.KMS_KEY_ARN, "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab"),
    (identity._USER_POOL_ARN, "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"),
    (identity._ASSUMED_ROLE, "arn:aws:sts::123456789012:assumed-role/ops/session"),
    (cors._ORIGIN, "https://app.example.com"),
    (plans._PLAN_NAME, "acme"),
    (SSM_PARAMETER_NAME, "/sfn-gateway/prod/secret"),
    (webhook_settings._WEBHOOK_ID, "billing"),
]


@pytest.mark.parametrize("pattern, value", PATTERNS_AND_VALID_VALUES)
def test_a_pattern_accepts_the_value_and_refuses_it_with_a_trailing_newline(pattern, value):
    assert pattern.match(value)
    assert pattern.match(value + "\n") is None


def test_an_execution_arn_with_a_trailing_newline_is_refused_as_invalid():
    machines = registry.StateMachineRegistry(
        [registry.StateMachine("orders", "arn:aws:states:us-east-1:123456789012:stateMachine:orders", "STANDARD")]
    )
    arn = "arn:aws:states:us-east-1:123456789012:execution:orders:run-1"
    assert machines.for_execution(arn).name == "orders"
    with pytest.raises(InvalidArn, match="is not an execution ARN"):
        machines.for_execution(arn + "\n")
