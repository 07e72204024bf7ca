"""Benchmark P5: GET /executions?stateMachine=hello&limit=50 with 10,000 executions vs with 100.

Two local stacks side by side, one engine per size. Executions are created directly on each
engine with its boto3 client from several threads; the listing is timed through the gateway,
alternating between the two stacks.
"""
import concurrent.futures
import json
import statistics
import sys
import threading
import time

import requests

from tests.test_end_to_end import Stack
from tests.test_reliability import HELLO_ARN, signed_raw

SMALL, LARGE = 100, 10_000
CREATORS = 8
CREATE_TIME_LIMIT = 400
RUNS = 7
CALLS = 30


def create_executions(stack, count: int, time_limit: float) -> tuple[int, float]:
    """Start `count` hello executions on the stack's engine; (how many were created, seconds)."""
    deadline = time.monotonic() + time_limit
    numbers = iter(range(count))
    lock = threading.Lock()

    def creator():
        engine = stack.engine_client()
        created = 0
        while time.monotonic() < deadline:
            with lock:
                number = next(numbers, None)
            if number is None:
                break
            engine.start_execution(stateMachineArn=HELLO_ARN, input=json.dumps({"name": f"list-{number}"}))
            created += 1
        return created

    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CREATORS) as pool:
        created = sum(future.result() for future in [pool.submit(creator) for _ in range(CREATORS)])
    return created, time.monotonic() - began


def _median_ms(url: str, session, calls: int) -> float:
    timings = []
    for _ in range(calls):
        began = time.perf_counter()
        response = signed_raw("GET", f"{url}/executions?stateMachine=hello&limit=50", b"", session=session)
        timings.append(time.perf_counter() - began)
        assert response.status_code == 200 and len(response.json()["executions"]) == 50, response.text[:300]
    return statistics.median(timings) * 1000


def main() -> None:
    small, large = Stack(), Stack()
    try:
        created_small, _ = create_executions(small, SMALL, CREATE_TIME_LIMIT)
        created_large, seconds = create_executions(large, LARGE, CREATE_TIME_LIMIT)
        print(f"   created {created_large} executions in {seconds:.0f} s ({created_large / seconds:.0f}/s, "
              f"{CREATORS} threads, boto3 StartExecution on the engine)", file=sys.stderr, flush=True)
        time.sleep(2)  # let the last hello executions finish
        small_session, large_session = requests.Session(), requests.Session()
        _median_ms(small.url, small_session, 5)
        _median_ms(large.url, large_session, 5)
        small_ms, large_ms = [], []
        for _ in range(RUNS):
            small_ms.append(_median_ms(small.url, small_session, CALLS))
            large_ms.append(_median_ms(large.url, large_session, CALLS))
        low, high = statistics.median(small_ms), statistics.median(large_ms)
        print(f"P5 listing at scale: {high / low:.2f}x (limit=50 with {created_large} executions {high:.2f} ms / "
              f"with {created_small} {low:.2f} ms, median of {RUNS} runs x {CALLS} calls)", flush=True)
    finally:
        small.stop()
        large.stop()


if __name__ == "__main__":
    main()
