"""local/engine/redrive.py: RedriveExecution, absent from moto 5.2.5, refused with an error code."""
import pytest
from botocore.exceptions import ClientError


def test_redrive_execution_is_not_implemented_and_says_so_with_an_error_code(sfn, hello_execution):
    with pytest.raises(ClientError) as excinfo:
        sfn.redrive_execution(executionArn=hello_execution)
    assert excinfo.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "RedriveExecution" in excinfo.value.response["Error"]["Message"]
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 0
