"""Benchmark P6: how late ?wait= delivers a result after the execution has ended; and what a wait costs in calls."""
import datetime
import json
import random
import statistics
import time
from urllib.parse import quote

from chalicelib.stepfunctions.budget import API_GATEWAY_TIMEOUT_SECONDS, SAFETY_MARGIN_SECONDS, Budget
from chalicelib.config import config_from_environ
from chalicelib.stepfunctions.service import StepFunctionsGateway
from tests.test_end_to_end import REGION, Stack, signed

RUNS = 16
SLOW_ARN = f"arn:aws:states:{REGION}:123456789012:stateMachine:slow"
# DescribeExecution's quota is the account's: issue 17 allows one ?wait=25 at most 30 calls.
MOST_CALLS_PER_25_S = 30


def one_delay(stack, seconds: int, offset: float) -> float:
    # Workflow durations are whole seconds here, so the wait starts after a random offset:
    # otherwise every end would fall at the same phase of the polling schedule.
    started = signed("POST", f"{stack.url}/executions", {"stateMachine": "slow", "input": {"seconds": seconds}})
    time.sleep(offset)
    arn = quote(started.json()["executionArn"], safe="")
    response = signed("GET", f"{stack.url}/executions/{arn}?wait=10")
    received = datetime.datetime.now(datetime.timezone.utc)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "SUCCEEDED", body
    return (received - datetime.datetime.fromisoformat(body["stopDate"])).total_seconds()


def calls_per_wait(stack, seconds: int) -> int:
    """DescribeExecution calls the gateway's ?wait=<seconds> makes on an execution that outlasts it."""
    engine = stack.engine_client()
    calls = []
    engine.meta.events.register(
        "before-call", lambda model, **_: calls.append(model.name) if model.name == "DescribeExecution" else None)
    config = config_from_environ({"STATE_MACHINES": json.dumps({"slow": {"arn": SLOW_ARN}})})
    gateway = StepFunctionsGateway(lambda read_timeout: engine, config,
                                   Budget(API_GATEWAY_TIMEOUT_SECONDS - SAFETY_MARGIN_SECONDS))
    arn = engine.start_execution(stateMachineArn=SLOW_ARN, input=json.dumps({"seconds": seconds + 30}))["executionArn"]
    try:
        ended, _ = gateway.wait_for_execution(arn, seconds)
    finally:
        engine.stop_execution(executionArn=arn)
    assert not ended
    return len(calls)


def main() -> None:
    stack = Stack()
    try:
        # Spread the end times over the first seconds of the backoff schedule (0.1 s growing to 0.3 s).
        randomizer = random.Random(7)
        delays = [one_delay(stack, 2 + run % 3, randomizer.uniform(0, 1)) for run in range(RUNS)]
        calls = {seconds: calls_per_wait(stack, seconds) for seconds in (5, 25)}
    finally:
        stack.stop()
    delays.sort()
    print(f"P6 ?wait= delivery delay after the execution ends, {RUNS} runs of slow (2-4 s, wait begun at a random offset): "
          f"median {statistics.median(delays) * 1000:.0f} ms, p90 {delays[int(RUNS * 0.9) - 1] * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms (target <= 250 ms median)")
    print(f"P6 calls per wait on a running execution: {calls[5]} DescribeExecution calls for ?wait=5, "
          f"{calls[25]} for ?wait=25 (target <= {MOST_CALLS_PER_25_S} per 25 s)")


if __name__ == "__main__":
    main()
