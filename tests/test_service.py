"""StepFunctionsGateway directly: the ?wait= polling schedule, with a fake clock."""
from chalicelib.config import parse_state_machines
from chalicelib.service import StepFunctionsGateway
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
    """A stand-in client whose execution never ends; counts DescribeExecution calls."""

    def __init__(self):
        self.describes = 0

    def describe_execution(self, executionArn):
        self.describes += 1
        return {"executionArn": executionArn, "stateMachineArn": ORDERS_ARN, "status": "RUNNING", "input": "{}"}


def gateway(client, clock):
    registry = parse_state_machines('{"orders": {"arn": "%s"}}' % ORDERS_ARN)
    return StepFunctionsGateway(client, registry, clock=clock.time, sleep=clock.sleep)


def test_wait_backs_off_from_100_ms_to_300_ms_and_stops_at_the_deadline():
    clock, client = FakeClock(), RunningForever()
    ended, described = gateway(client, clock).wait_for_execution(execution_arn(), 5)
    assert ended is False
    assert described["status"] == "RUNNING"
    assert clock.sleeps[:6] == [0.1, 0.15, 0.225, 0.3, 0.3, 0.3]
    assert abs(sum(clock.sleeps) - 5) < 1e-9
    # 5 s of waiting costs 20 DescribeExecution calls, i.e. at most ~4 calls/s.
    assert client.describes == len(clock.sleeps) + 1 == 20


def test_wait_zero_describes_exactly_once():
    clock, client = FakeClock(), RunningForever()
    assert gateway(client, clock).wait_for_execution(execution_arn(), 0)[0] is False
    assert (client.describes, clock.sleeps) == (1, [])
