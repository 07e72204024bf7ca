"""Benchmark P4: a signed POST /executions of hello through the local stack vs a direct StartExecution.

Both go to the same engine (the one inside `python -m local.run`), one request at a time over
keep-alive connections, and both include signing the request on the client.
"""
import json
import statistics
import time

import requests

from tests.test_end_to_end import Stack
from tests.test_reliability import HELLO_ARN, signed_raw

RUNS = 7
CALLS = 100


def _median_ms(call, calls: int) -> float:
    timings = []
    for number in range(calls):
        began = time.perf_counter()
        call(number)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings) * 1000


def main() -> None:
    stack = Stack()
    try:
        engine = stack.engine_client()
        session = requests.Session()

        def through_gateway(number):
            data = json.dumps({"stateMachine": "hello", "input": {"name": f"rt-{number}"}}).encode()
            response = signed_raw("POST", f"{stack.url}/executions", data, session=session)
            assert response.status_code == 201, response.text

        def direct(number):
            engine.start_execution(stateMachineArn=HELLO_ARN, input=json.dumps({"name": f"rt-{number}"}))

        _median_ms(through_gateway, 20)
        _median_ms(direct, 20)
        gateway_ms, direct_ms = [], []
        for _ in range(RUNS):
            gateway_ms.append(_median_ms(through_gateway, CALLS))
            direct_ms.append(_median_ms(direct, CALLS))
        gateway, bare = statistics.median(gateway_ms), statistics.median(direct_ms)
        print(f"P4 signed round trip: {gateway / bare:.2f}x (gateway {gateway:.2f} ms / direct boto3 StartExecution "
              f"{bare:.2f} ms, median of {RUNS} runs x {CALLS} sequential calls; target <= 2x)", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
