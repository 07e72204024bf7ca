"""Benchmark P7: how late a completion webhook arrives after the execution has ended (local stack)."""
import datetime
import statistics
import time

from local.receiver import Receiver
from tests.webhooks.test_webhooks_end_to_end import WebhookStack, webhooks_for

RUNS = 30


def one_delay(stack, receiver, seconds: int) -> float:
    arn = stack.start("slow", {"seconds": seconds})
    [webhook] = webhooks_for(receiver, arn, timeout=seconds + 10)
    stop = datetime.datetime.fromisoformat(webhook["payload"]["stopDate"]).timestamp()
    return webhook["receivedAt"] - stop


def main() -> None:
    with Receiver("whsec_" + "A" * 44) as receiver:
        stack = WebhookStack(receiver)
        receiver.use_secret(stack.secret)
        try:
            started = time.monotonic()
            delays = sorted(one_delay(stack, receiver, 1) for _ in range(RUNS))
            took = time.monotonic() - started
        finally:
            stack.close()
    verified = sum(1 for webhook in receiver.received if webhook["verified"])
    print(f"P7 webhook delivery delay after the execution ends, {RUNS} runs of slow (1 s): "
          f"p50 {statistics.median(delays) * 1000:.0f} ms, p90 {delays[int(RUNS * 0.9) - 1] * 1000:.0f} ms, "
          f"max {delays[-1] * 1000:.0f} ms (target p50 <= 1000 ms)")
    print(f"  {verified} of {len(receiver.received)} webhooks verified with standardwebhooks; {took:.1f} s in all")


if __name__ == "__main__":
    main()
