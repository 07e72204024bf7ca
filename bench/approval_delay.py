"""Benchmark P8: from SendMessage on the approvals queue to the approval listed in GET /approvals (local stack)."""
import json
import statistics
import time
import uuid

import boto3
import requests

from local.issuer import DevIssuer
from tests.auth.test_identity_end_to_end import ModeStack, bearer

RUNS = 30
POLL_SECONDS = 0.005
ACCESS_RULES = [{"groups": ["approvers"], "stateMachines": ["*"], "operations": ["*"]}]
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:approval:bench-{}"


def one_delay(stack, sqs, queue_url: str, ada: dict) -> float:
    name = uuid.uuid4().hex
    body = {"taskToken": f"bench-token-{name}", "executionArn": EXECUTION.format(name), "title": f"bench {name}",
            "details": {"n": 1}, "candidateGroups": ["approvers"], "candidateUsers": [], "timeoutSeconds": 600}
    started = time.perf_counter()
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))
    while True:
        page = requests.get(f"{stack.url}/approvals?limit=5", headers=ada, timeout=10).json()
        if any(approval["title"] == f"bench {name}" for approval in page["approvals"]):
            return time.perf_counter() - started
        if time.perf_counter() - started > 10:
            raise RuntimeError("the approval never appeared")
        time.sleep(POLL_SECONDS)


def main() -> None:
    with DevIssuer() as issuer:
        stack = ModeStack(AUTH_MODE="jwt", JWT_ISSUER=issuer.issuer, JWT_AUDIENCE=issuer.audience,
                          ACCESS_RULES=json.dumps(ACCESS_RULES))
        try:
            sqs = boto3.client("sqs", endpoint_url=stack.engine_url, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            queue_url = sqs.get_queue_url(QueueName="sfn-gateway-approvals")["QueueUrl"]
            ada = bearer(issuer.mint("ada", groups=["approvers"]))
            one_delay(stack, sqs, queue_url, ada)  # warm-up: first imports of the consumer
            delays = sorted(one_delay(stack, sqs, queue_url, ada) for _ in range(RUNS))
        finally:
            stack.stop()
    print(f"P8 approval visible after SendMessage, {RUNS} messages (long-polling consumer, GET /approvals polled "
          f"every {POLL_SECONDS * 1000:.0f} ms): p50 {statistics.median(delays) * 1000:.0f} ms, "
          f"p90 {delays[int(RUNS * 0.9) - 1] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
