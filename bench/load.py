"""Load: 5,000 signed POST /executions of hello from 16 keep-alive clients through the local stack.

The reliability test runs the same check with fewer requests to stay fast; this is the full run.
Prints throughput and latency, and checks every 201 against the engine's own execution list.
"""
import collections
import time

from tests.test_end_to_end import Stack
from tests.test_reliability import HELLO_ARN, engine_executions, run_load

REQUESTS = 5000
CLIENTS = 16
TIME_LIMIT = 300


def main() -> None:
    stack = Stack()
    try:
        engine = stack.engine_client()
        before = {e["executionArn"] for e in engine_executions(engine, HELLO_ARN)}
        began = time.monotonic()
        results = run_load(stack.url, REQUESTS, CLIENTS, TIME_LIMIT)
        elapsed = time.monotonic() - began
        statuses = collections.Counter(status for status, _, _ in results)
        created = [body["executionArn"] for status, body, _ in results if status == 201]
        latencies = sorted(seconds * 1000 for _, _, seconds in results)
        after = {e["executionArn"] for e in engine_executions(engine, HELLO_ARN)}
        grown = after - before
        consistent = grown == set(created) and len(set(created)) == len(created) and after >= before
        server_errors = sum(count for status, count in statuses.items() if status >= 500)
        print(f"Load: {len(created)}/{REQUESTS} x 201 in {elapsed:.1f} s ({len(results) / elapsed:.0f} req/s, "
              f"{CLIENTS} clients, latency p50 {latencies[len(latencies) // 2]:.0f} ms "
              f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.0f} ms), statuses {dict(statuses)}, 5xx {server_errors}, "
              f"engine grew by {len(grown)}: {'consistent' if consistent else 'MISMATCH'}", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
