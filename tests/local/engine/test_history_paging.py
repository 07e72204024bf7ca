"""local/engine/history_paging.py: GetExecutionHistory pages as AWS pages it."""
import pytest
from botocore.exceptions import ClientError

from tests.local.engine.engine_support import create_machine, error_code, wait_until_done


# --- patch 2: GetExecutionHistory pagination -----------------------------------------------------


def test_history_without_paging_parameters_returns_all_events_oldest_first(sfn, hello_execution):
    page = sfn.get_execution_history(executionArn=hello_execution)
    assert [event["id"] for event in page["events"]] == [1, 2, 3, 4, 5, 6]
    assert page["events"][-1]["type"] == "ExecutionSucceeded"
    assert "nextToken" not in page


def test_history_pages_by_max_results_with_a_next_token(sfn, hello_execution):
    first = sfn.get_execution_history(executionArn=hello_execution, maxResults=4)
    second = sfn.get_execution_history(
        executionArn=hello_execution, maxResults=4, nextToken=first["nextToken"]
    )
    assert [event["id"] for event in first["events"]] == [1, 2, 3, 4]
    assert [event["id"] for event in second["events"]] == [5, 6]
    assert "nextToken" not in second


def test_history_in_reverse_order_pages_newest_first(sfn, hello_execution):
    first = sfn.get_execution_history(executionArn=hello_execution, maxResults=4, reverseOrder=True)
    second = sfn.get_execution_history(
        executionArn=hello_execution, maxResults=4, reverseOrder=True, nextToken=first["nextToken"]
    )
    assert [event["id"] for event in first["events"]] == [6, 5, 4, 3]
    assert first["events"][0]["type"] == "ExecutionSucceeded"
    assert [event["id"] for event in second["events"]] == [2, 1]
    assert "nextToken" not in second


def test_history_pages_default_to_100_events(sfn):
    # 60 loops of Pass + Choice (4 events each), Succeed (2), start and end: 244 events.
    arn = create_machine(
        sfn,
        "history-loop-probe",
        {
            "Count": {
                "Type": "Pass",
                "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                "Next": "More",
            },
            "More": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericLessThan": 60, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
        "Count",
    )
    execution_arn = sfn.start_execution(stateMachineArn=arn, input='{"n": 0}')["executionArn"]
    assert wait_until_done(sfn, execution_arn)["status"] == "SUCCEEDED"

    sizes, ids, token = [], [], None
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = sfn.get_execution_history(executionArn=execution_arn, **kwargs)
        sizes.append(len(page["events"]))
        ids += [event["id"] for event in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert sizes == [100, 100, 44]
    assert ids == list(range(1, 245))
    everything = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)
    assert len(everything["events"]) == 244 and "nextToken" not in everything


def test_history_rejects_a_token_from_another_execution_or_order(sfn, machines, hello_execution):
    other = sfn.start_execution(stateMachineArn=machines["hello"]["arn"], input='{"name": "Cy"}')[
        "executionArn"
    ]
    wait_until_done(sfn, other)
    token = sfn.get_execution_history(executionArn=other, maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as excinfo:
        sfn.get_execution_history(executionArn=hello_execution, maxResults=1, nextToken=token)
    assert error_code(excinfo) == "InvalidToken"
    with pytest.raises(ClientError) as excinfo:
        sfn.get_execution_history(executionArn=other, reverseOrder=True, nextToken=token)
    assert error_code(excinfo) == "InvalidToken"
    with pytest.raises(ClientError) as excinfo:
        sfn.get_execution_history(executionArn=other, nextToken="garbage")
    assert error_code(excinfo) == "InvalidToken"


def test_history_rejects_max_results_above_1000(sfn, hello_execution):
    with pytest.raises(ClientError) as excinfo:
        sfn.get_execution_history(executionArn=hello_execution, maxResults=1001)
    assert error_code(excinfo) == "ValidationException"
