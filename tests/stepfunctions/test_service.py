"""StepFunctionsGateway directly: the ?wait= polling schedule and the request's time budget, with a fake clock."""
import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber

from chalicelib.stepfunctions.budget import Budget
from chalicelib.config import config_from_environ
from chalicelib.errors import BackendError, BackendTimeout
from chalicelib.stepfunctions.service import StepFunctionsGateway
from tests.conftest import ORDERS_ARN, execution_arn


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 4))
        self.now += seconds


class RunningForever:
    """A stand-in client whose execution never ends; counts calls and the read timeouts asked for."""

    def __init__(self, clock, call_seconds=0.0):
        self.clock = clock
        self.call_seconds = call_seconds
        self.describes = 0
        self.read_timeouts = []

    def for_read_timeout(self, read_timeout):
        self.read_timeouts.append(read_timeout)
        return self

    def describe_execution(self, executionArn):
        self.describes += 1
        self.clock.now += self.call_seconds
        return {"executionArn": executionArn, "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "input": "{}"}


class AlwaysFailing(RunningForever):
    """Every StartExecution fails with a retryable 500."""

    def start_execution(self, **params):
        self.clock.now += self.call_seconds
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "boom"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "StartExecution")


class SlowStepFunctions:
    """Every call takes `call_seconds`; a read timeout shorter than that fails the call, as botocore's does."""

    # botocore's retry policy reads the operation models from here.
    meta = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s").meta

    def __init__(self, clock, call_seconds=5.5):
        self.clock = clock
        self.call_seconds = call_seconds
        self.read_timeout = None
        self.calls = []

    def for_read_timeout(self, read_timeout):
        self.read_timeout = read_timeout
        return self

    def _answer(self, operation, answer):
        self.calls.append(operation)
        if self.call_seconds > self.read_timeout:
            self.clock.now += self.read_timeout
            raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com/")
        self.clock.now += self.call_seconds
        return answer

    def start_execution(self, stateMachineArn, name, input):
        return self._answer("start_execution", {"executionArn": execution_arn(name=name), "startDate": "2026-12-04"})

    def describe_execution(self, executionArn):
        return self._answer("describe_execution", {"executionArn": executionArn, "status": "RUNNING", "input": "{}"})


def gateway(client, clock, budget_seconds=None):
    config = config_from_environ({"STATE_MACHINES": '{"orders": {"arn": "%s"}}' % ORDERS_ARN})
    budget = None if budget_seconds is None else Budget(budget_seconds, clock.time)
    return StepFunctionsGateway(client.for_read_timeout, config, budget, clock=clock.time, sleep=clock.sleep)


def test_wait_polls_every_100_to_300_ms_for_4_s_then_backs_off_to_3_s_and_stops_at_the_deadline():
    clock = FakeClock()
    client = RunningForever(clock)
    ended, described = gateway(client, clock).wait_for_execution(execution_arn(), 25)
    assert ended is False
    assert described["status"] == "RUNNING"
    # Short workflows end in the first seconds: polled as densely as before (P6).
    assert clock.sleeps[:4] == [0.1, 0.15, 0.225, 0.3]
    assert sum(clock.sleeps[:14]) < 4.0 <= sum(clock.sleeps[:15]) and set(clock.sleeps[3:15]) == {0.3}
    # Then back off x1.5 up to 3 s.
    assert clock.sleeps[15:21] == [0.45, 0.675, 1.0125, 1.5187, 2.2781, 3.0]
    assert max(clock.sleeps) == 3.0
    assert abs(clock.now - 25) < 1e-9
    assert client.describes == len(clock.sleeps) + 1


@pytest.mark.parametrize("seconds, most_calls", [(5, 18), (10, 21), (25, 26)])
def test_a_wait_costs_at_most_30_describe_calls_per_25_s(seconds, most_calls):
    clock = FakeClock()
    client = RunningForever(clock)
    gateway(client, clock).wait_for_execution(execution_arn(), seconds)
    # DescribeExecution's quota is the account's: one ?wait=25 may spend at most 30 calls of it.
    assert client.describes == most_calls <= 30


def test_wait_zero_describes_exactly_once():
    clock = FakeClock()
    client = RunningForever(clock)
    assert gateway(client, clock).wait_for_execution(execution_arn(), 0)[0] is False
    assert (client.describes, clock.sleeps) == (1, [])


def test_wait_stops_early_enough_for_its_last_describe_to_fit_the_budget():
    clock = FakeClock()
    client = RunningForever(clock, call_seconds=0.05)
    ended, _ = gateway(client, clock, budget_seconds=10).wait_for_execution(execution_arn(), 25)
    assert ended is False
    # connect (2 s) + the shortest read (1 s) stay in reserve: polling ends by 7 s, the answer by 10 s.
    assert 6.5 <= clock.now <= 7.1
    assert all(timeout <= 6.0 for timeout in client.read_timeouts)


def test_a_start_whose_budget_runs_out_before_the_first_describe_returns_what_it_knows():
    clock = FakeClock()
    client = RunningForever(clock)
    known = {"executionArn": execution_arn(), "name": "run-1"}
    ended, described = gateway(client, clock, budget_seconds=2.5).wait_for_execution(execution_arn(), 10, known=known)
    assert (ended, described, client.describes) == (False, known, 0)


def test_read_timeout_shrinks_to_what_is_left_of_the_budget():
    clock = FakeClock()
    client = RunningForever(clock)
    gateway(client, clock, budget_seconds=5.5).describe_execution(execution_arn())
    # 5.5 s left - 2 s connect = 3.5 s, rounded down to whole seconds so few clients are ever built.
    assert client.read_timeouts == [3.0]


def test_no_call_is_sent_when_the_budget_cannot_fit_one():
    clock = FakeClock()
    client = RunningForever(clock)
    with pytest.raises(BackendTimeout, match="nothing was changed"):
        gateway(client, clock, budget_seconds=2.9).describe_execution(execution_arn())
    assert client.describes == 0


def test_retries_stop_when_another_attempt_would_not_fit_the_budget():
    clock = FakeClock()
    client = AlwaysFailing(clock, call_seconds=4.0)
    with pytest.raises(BackendError):
        gateway(client, clock, budget_seconds=10).start_execution("orders", {}, "n")
    # Attempt 1 ends at 4 s; attempt 2 at ~8 s leaves under 3 s: no third attempt, answer before 10 s.
    assert len(client.read_timeouts) == 2
    assert clock.now < 10


def test_without_a_budget_every_attempt_is_made():
    clock = FakeClock()
    client = AlwaysFailing(clock)
    with pytest.raises(BackendError):
        gateway(client, clock).start_execution("orders", {}, "n")
    assert len(client.read_timeouts) == 3


def test_a_start_on_a_slow_step_functions_ends_its_wait_with_what_it_knows_instead_of_timing_out():
    # Issue 19.1: about 5 s per call; ?wait=25 in a 27.5 s budget. A describe near the end of
    # the budget gets a shorter read timeout and times out: the start must still answer 202.
    clock = FakeClock()
    client = SlowStepFunctions(clock)
    service = gateway(client, clock, budget_seconds=27.5)
    started = service.start_execution("orders", {}, "slow-1")
    ended, described = service.wait_for_execution(started["executionArn"], 25, known=started)
    assert ended is False
    assert described["executionArn"] == execution_arn(name="slow-1")
    assert "describe_execution" in client.calls
    assert clock.now <= 27.5


@pytest.mark.parametrize("code, status", [("ThrottlingException", 400), ("InternalFailure", 500),
                                          ("ExecutionDoesNotExist", 400)])
def test_a_failing_describe_ends_a_wait_on_a_known_execution_with_its_last_description(code, status):
    clock = FakeClock()
    client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    config = config_from_environ({"STATE_MACHINES": '{"orders": {"arn": "%s"}}' % ORDERS_ARN})
    service = StepFunctionsGateway(lambda read_timeout: client, config, clock=clock.time, sleep=clock.sleep)
    with Stubber(client) as stub:
        stub.add_response("describe_execution", {"executionArn": execution_arn(), "stateMachineArn": ORDERS_ARN,
                                                 "status": "RUNNING", "startDate": "2026-12-04T00:00:00Z"})
        for _ in range(config.max_attempts):
            stub.add_client_error("describe_execution", code, "no", http_status_code=status)
        ended, described = service.wait_for_execution(execution_arn(), 10)
    assert ended is False
    assert described["status"] == "RUNNING" and described["executionArn"] == execution_arn()


def test_a_wait_whose_first_describe_fails_without_a_known_execution_raises_the_error():
    clock = FakeClock()
    client = SlowStepFunctions(clock, call_seconds=30.0)
    with pytest.raises(BackendTimeout):
        gateway(client, clock, budget_seconds=27.5).wait_for_execution(execution_arn(), 25)
