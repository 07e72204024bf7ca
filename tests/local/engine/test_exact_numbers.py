"""The local engine keeps numbers as written (local/engine/exact_numbers.py), and never writes NaN or Infinity."""

from chalicelib.serialization import loads as exact_loads
from local.engine.exact_numbers import ExactFloat, to_json_text
from tests.local.engine.engine_support import create_machine, task_token, wait_until_done

# Numbers a float cannot hold exactly, or at all, and a trailing zero a float would drop.
EXACT_INPUT = ('{"x": 12345678901234567.89, "huge": 1e400, "int": 123456789012345678901234567890, '
               '"z": 1.10, "tiny": -0.0, "seconds": 0}')
EXACT_FRAGMENTS = ('12345678901234567.89', '1e400', '123456789012345678901234567890', '1.10', '-0.0')


def assert_exact(text: str) -> None:
    for fragment in EXACT_FRAGMENTS:
        assert fragment in text, (fragment, text)
    assert "Infinity" not in text and "NaN" not in text
    exact_loads(text)  # valid JSON, numbers and all


def test_numbers_passing_through_states_unchanged_keep_their_text_in_describe_and_history(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input=EXACT_INPUT)["executionArn"]
    described = wait_until_done(sfn, arn)

    assert described["status"] == "SUCCEEDED"
    assert_exact(described["output"])
    assert_exact(described["input"])
    exits = [event["stateExitedEventDetails"]["output"]
             for event in sfn.get_execution_history(executionArn=arn)["events"] if "stateExitedEventDetails" in event]
    assert exits
    for output in exits:
        assert_exact(output)


def test_a_number_too_large_for_a_float_comes_back_as_written_not_infinity(sfn, machines):
    # Issue 19.7: {"x": 1e400} through slow came back as {"x": Infinity}, which is not JSON.
    arn = sfn.start_execution(stateMachineArn=machines["slow"]["arn"], input='{"x": 1e400, "seconds": 0}')["executionArn"]

    output = wait_until_done(sfn, arn)["output"]

    assert output.replace(" ", "") == '{"x":1e400,"seconds":0}'


def test_an_express_runs_result_keeps_its_numbers(sfn, machines):
    ran = sfn.start_sync_execution(stateMachineArn=machines["echo-express"]["arn"], input=EXACT_INPUT)

    assert ran["status"] == "SUCCEEDED", ran
    assert_exact(ran["output"])


def test_a_task_answer_keeps_its_numbers(sfn, machines):
    arn = sfn.start_execution(stateMachineArn=machines["approval"]["arn"], input="{}")["executionArn"]

    sfn.send_task_success(taskToken=task_token(sfn, arn),
                          output='{"total": 12345678901234567.89, "huge": 1e400, "z": 1.10}')

    output = wait_until_done(sfn, arn)["output"]
    assert_exact_fragments = ("12345678901234567.89", "1e400", "1.10")
    assert all(fragment in output for fragment in assert_exact_fragments), output
    assert "Infinity" not in output
    exact_loads(output)


def test_exact_numbers_still_compute_in_choice_rules(sfn):
    states = {
        "Big": {"Type": "Choice", "Choices": [
            {"Variable": "$.x", "NumericGreaterThan": 12345678901234567, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "greater", "End": True},
        "No": {"Type": "Pass", "Result": "not greater", "End": True},
    }
    machine = create_machine(sfn, "exact-choice", states, "Big")
    arn = sfn.start_execution(stateMachineArn=machine, input='{"x": 12345678901234569.5}')["executionArn"]

    # A string output is JSON text too (moto wrote it bare).
    assert wait_until_done(sfn, arn)["output"] == '"greater"'


def test_the_writer_never_writes_nan_or_infinity_for_a_computed_number():
    computed = {"inf": float("inf"), "nan": float("nan"), "minus": float("-inf"), "plain": 0.1,
                "kept": ExactFloat("1e400")}

    assert to_json_text(computed, separators=(",", ":")) == '{"inf":null,"nan":null,"minus":null,"plain":0.1,"kept":1e400}'


def test_numbers_keep_their_text_through_parallel_and_map_states(sfn):
    branch = {"StartAt": "Same", "States": {"Same": {"Type": "Pass", "End": True}}}
    states = {
        "Both": {"Type": "Parallel", "Branches": [branch, branch], "Next": "Each"},
        "Each": {"Type": "Map", "ItemsPath": "$", "Iterator": branch, "End": True},
    }
    machine = create_machine(sfn, "exact-parallel-map", states, "Both")
    arn = sfn.start_execution(stateMachineArn=machine, input='{"x": 12345678901234567.89, "z": 1.10}')["executionArn"]

    output = wait_until_done(sfn, arn)["output"]

    assert output.replace(" ", "") == '[{"x":12345678901234567.89,"z":1.10},{"x":12345678901234567.89,"z":1.10}]'
