"""StepFunctionsGateway directly: the ?wait= polling schedule and the request's time budget, with a fake clock."""
import pytest
from botocore.exceptions import ClientError

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


def gateway(client, clock, budget_seconds=None):
    config = config_from_environ({"STATE_MACHINES": '{"orders": {"arn": "%s"}}' % ORDERS_ARN})
    budget = None if budget_seconds is None else Budget(budget_seconds, clock.time)
    return StepFunctionsGateway(client.for_read_timeout, config, budget, clock=clock.time, sleep=clock.sleep)


def test_wait_backs_off_from_100_ms_to_300_ms_and_stops_at_the_deadline():
    clock = FakeClock()
    client = RunningForever(clock)
    ended, described = gateway(client, clock).wait_for_execution(execution_arn(), 5)
    assert ended is False
    assert described["status"] == "RUNNING"
    assert clock.sleeps[:6] == [0.1, 0.15, 0.225, 0.3, 0.3, 0.3]
    assert abs(sum(clock.sleeps) - 5) < 1e-9
    # 5 s of waiting costs 20 DescribeExecution calls, i.e. at most ~4 calls/s.
    assert client.describes == len(clock.sleeps) + 1 == 20


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
