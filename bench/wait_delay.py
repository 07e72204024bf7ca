"""Benchmark P6: how late ?wait= delivers a result after the execution has ended."""
import datetime
import random
import statistics
import time
from urllib.parse import quote

from tests.test_end_to_end import Stack, signed

RUNS = 16


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


def main() -> None:
    stack = Stack()
    try:
        # Spread the end times over the backoff schedule (0.1 s growing to 0.5 s).
        randomizer = random.Random(7)
        delays = [one_delay(stack, 2 + run % 3, randomizer.uniform(0, 1)) for run in range(RUNS)]
    finally:
        stack.stop()
    delays.sort()
    print(f"P6 ?wait= delivery delay after the execution ends, {RUNS} runs of slow (2-4 s, wait begun at a random offset): "
          f"median {statistics.median(delays) * 1000:.0f} ms, p90 {delays[int(RUNS * 0.9) - 1] * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms (target <= 250 ms median)")


if __name__ == "__main__":
    main()
