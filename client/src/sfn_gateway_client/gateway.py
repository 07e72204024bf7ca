"""`Gateway`: one method per sfn-gateway route, signed with SigV4 (or a bearer token), with safe retries."""
from __future__ import annotations

import email.utils
import json
import math
import os
import platform
import random
import re
import time
import uuid
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Tuple
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.httpsession import get_cert_path

from sfn_gateway_client import __version__
from sfn_gateway_client.errors import (
    ApiError,
    ConfigurationError,
    ExecutionAlreadyExists,
    GatewayUnreachable,
    error_from_response,
)

# Statuses worth another try: the request was not carried out (throttled, or the backend unreachable).
RETRYABLE_STATUSES = (429, 503)
ENDED_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TERMINAL_EVENTS = ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted")
# The gateway accepts ?wait= up to 25 s (API Gateway cuts every request at 29 s).
MAX_SERVER_WAIT = 25
# A read must outlast the gateway's own wait, plus its Step Functions call.
_READ_MARGIN = 10.0
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.(?:vpce\.)?amazonaws\.com(?:\.cn)?$")
_USER_AGENT = f"sfn-gateway-client/{__version__} python/{platform.python_version()}"

Progress = Callable[[Dict[str, Any], float], None]


def region_from_url(url: str) -> Optional[str]:
    """The region of an execute-api host name (`<id>.execute-api.<region>.amazonaws.com`), else None."""
    match = _EXECUTE_API_HOST.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def is_ended(description: Mapping[str, Any]) -> bool:
    """True when an execution description has a final status."""
    return description.get("status") in ENDED_STATUSES


class Gateway:
    """A client of one sfn-gateway stage, e.g. `Gateway("https://abc.execute-api.us-east-1.amazonaws.com/api")`."""

    def __init__(
        self,
        url: str,
        *,
        region: Optional[str] = None,
        profile: Optional[str] = None,
        token: Optional[str] = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_wait: float = 30.0,
    ):
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"The gateway URL must look like https://host[/stage], got {url!r}.")
        if max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1.")
        self.url = url.rstrip("/")
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._token = token
        self._region = region or region_from_url(url)
        self._profile = profile
        self._credentials = None
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        self._http = urllib3.PoolManager(maxsize=4, ca_certs=get_cert_path(True))

    # --- routes ------------------------------------------------------------------------------

    def health(self) -> Dict[str, Any]:
        """`GET /health` (unsigned)."""
        return self._call("GET", "/health", sign=False)[1]

    def state_machines(self) -> list:
        """The stage's allow-listed state machines: `[{"name", "stateMachineArn", "type"}]`."""
        return self._call("GET", "/state-machines")[1]["stateMachines"]

    def describe_state_machine(self, name: str) -> Dict[str, Any]:
        """DescribeStateMachine of an allow-listed state machine (short name or ARN)."""
        return self._call("GET", "/state-machines/" + quote(name, safe=""))[1]

    def start(
        self,
        state_machine: str,
        input: Any = None,
        *,
        name: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        wait: Optional[float] = None,
        on_progress: Optional[Progress] = None,
    ) -> Dict[str, Any]:
        """Start an execution; with `wait`, return its description once it ends or `wait` seconds pass.

        An `Idempotency-Key` is always sent (the name, the given key, or a new UUID), so a retried
        start returns the execution the first attempt created instead of creating a second one.
        """
        if name and idempotency_key and name != idempotency_key:
            raise ConfigurationError("name and idempotency_key must be equal when both are given (the gateway "
                                     "uses the key as the execution name).")
        key = name or idempotency_key or str(uuid.uuid4())
        body = {"stateMachine": state_machine, "input": {} if input is None else input}
        if name:
            body["name"] = name
        started = time.monotonic()
        query = {"wait": _server_wait(wait)} if wait else None
        try:
            status, answer, headers = self._call(
                "POST", "/executions", query=query, body=body, headers={"Idempotency-Key": key},
                read_timeout=_read_timeout(self._timeout, wait),
            )
        except ExecutionAlreadyExists as err:
            # A retried attempt can meet the execution its own earlier attempt started (whose
            # answer was lost) once that execution has ended: hand that one back.
            if getattr(err, "attempts", 1) < 2:
                raise
            answer = self._own_execution(state_machine, key, body["input"])
            if answer is None:
                raise
            status, headers = 201, {"Location": self._execution_path(answer["executionArn"])}
        if not wait or (status == 200 and is_ended(answer)):
            return answer
        return self._wait_on(headers.get("Location") or self._execution_path(answer["executionArn"]),
                             started + wait, started, on_progress, answer if status == 202 else None)

    def run(self, state_machine: str, input: Any = None, *, name: Optional[str] = None) -> Dict[str, Any]:
        """Run an EXPRESS state machine synchronously; its result (any final status) is the answer."""
        body = {"stateMachine": state_machine, "input": {} if input is None else input}
        if name:
            body["name"] = name
        # No generated Idempotency-Key: Express names are not unique, so it would not dedupe anything.
        return self._call("POST", "/sync-executions", body=body, read_timeout=max(self._timeout, 35.0))[1]

    def describe(self, execution_arn: str, *, wait: Optional[float] = None) -> Dict[str, Any]:
        """DescribeExecution; with `wait` (≤ 25 s), the gateway holds the answer until the execution ends."""
        query = {"wait": _server_wait(wait)} if wait else None
        return self._call("GET", self._execution_route(execution_arn), query=query,
                          read_timeout=_read_timeout(self._timeout, wait))[1]

    def wait(self, execution_arn: str, *, timeout: Optional[float] = None,
             on_progress: Optional[Progress] = None) -> Dict[str, Any]:
        """Long-poll until the execution ends or `timeout` seconds pass; returns its latest description."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        return self._wait_on(self._execution_path(execution_arn), deadline, started, on_progress, None)

    def executions(self, state_machine: str, *, status: Optional[str] = None,
                   page_size: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """Every execution of a state machine (newest first), following `nextToken` page by page."""
        query = {"stateMachine": state_machine, "status": status, "limit": page_size}
        yield from self._pages("/executions", query, "executions")

    def history(self, execution_arn: str, *, reverse: bool = False,
                page_size: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """Every history event of an execution, following `nextToken` page by page."""
        query = {"reverse": "true" if reverse else None, "limit": page_size}
        yield from self._pages(self._execution_route(execution_arn) + "/history", query, "events")

    def follow(self, execution_arn: str, *, interval: float = 1.0) -> Iterator[Dict[str, Any]]:
        """History events as they happen, oldest first, until the execution ends."""
        last_id = 0
        while True:
            fresh = []
            # Newest first, so each poll reads only the events added since the last one.
            for event in self.history(execution_arn, reverse=True, page_size=100):
                if event["id"] <= last_id:
                    break
                fresh.append(event)
            for event in reversed(fresh):
                last_id = event["id"]
                yield event
                if event["type"] in TERMINAL_EVENTS:
                    return
            time.sleep(interval)

    def stop(self, execution_arn: str, *, error: Optional[str] = None, cause: Optional[str] = None) -> Dict[str, Any]:
        """StopExecution, with an optional error and cause; returns `{"stopDate"}`."""
        body = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
        return self._call("POST", self._execution_route(execution_arn) + "/stop", body=body)[1]

    def redrive(self, execution_arn: str, *, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """RedriveExecution; an `Idempotency-Key` (the clientToken) is always sent so a retry redrives once."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._call("POST", self._execution_route(execution_arn) + "/redrive", headers=headers)[1]

    def send_task_success(self, task_token: str, output: Any = None) -> Dict[str, Any]:
        """SendTaskSuccess: the waiting task ends with `output` (default `{}`)."""
        body = {"taskToken": task_token, **({} if output is None else {"output": output})}
        return self._call("POST", "/tasks/success", body=body)[1]

    def send_task_failure(self, task_token: str, *, error: Optional[str] = None,
                          cause: Optional[str] = None) -> Dict[str, Any]:
        """SendTaskFailure: the waiting task fails with `error` and `cause`."""
        body = {"taskToken": task_token}
        body.update({key: value for key, value in (("error", error), ("cause", cause)) if value is not None})
        return self._call("POST", "/tasks/failure", body=body)[1]

    def send_task_heartbeat(self, task_token: str) -> Dict[str, Any]:
        """SendTaskHeartbeat: the waiting task is still being worked on."""
        return self._call("POST", "/tasks/heartbeat", body={"taskToken": task_token})[1]

    def approvals(self, *, page_size: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """Every pending approval you may answer (newest first), following `nextToken` page by page."""
        yield from self._pages("/approvals", {"limit": page_size}, "approvals")

    def approval(self, approval_id: str) -> Dict[str, Any]:
        """One approval with its details and status."""
        return self._call("GET", self._approval_route(approval_id))[1]

    def approve(self, approval_id: str, *, comment: Optional[str] = None, data: Optional[Dict[str, Any]] = None
                ) -> Dict[str, Any]:
        """Approve; the workflow gets `{"decision": "approved", ...}`. ApprovalAlreadyAnswered if someone was first."""
        return self._answer(approval_id, "approve", comment, data)

    def reject(self, approval_id: str, *, comment: Optional[str] = None, data: Optional[Dict[str, Any]] = None
               ) -> Dict[str, Any]:
        """Reject; the workflow gets `{"decision": "rejected", ...}`. ApprovalAlreadyAnswered if someone was first."""
        return self._answer(approval_id, "reject", comment, data)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.clear()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- waiting, paging -------------------------------------------------------------------------

    def _wait_on(self, path: str, deadline: Optional[float], started: float,
                 on_progress: Optional[Progress], latest: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if latest is not None and remaining is not None and remaining <= 0:
                return latest
            seconds = MAX_SERVER_WAIT if remaining is None else max(1, min(MAX_SERVER_WAIT, math.ceil(remaining)))
            status, latest, headers = self._call("GET", path, query={"wait": seconds}, routed=False,
                                                 read_timeout=_read_timeout(self._timeout, seconds))
            if on_progress is not None:
                on_progress(latest, time.monotonic() - started)
            if is_ended(latest):
                return latest
            # The gateway's Location is an absolute path on its host (behind API Gateway it
            # carries the stage, e.g. /api/executions/...): follow it as given.
            path = headers.get("Location") or path

    def _pages(self, route: str, query: Dict[str, Any], key: str) -> Iterator[Dict[str, Any]]:
        query = {name: value for name, value in query.items() if value is not None}
        while True:
            page = self._call("GET", route, query=query)[1]
            yield from page[key]
            if not page.get("nextToken"):
                return
            query["nextToken"] = page["nextToken"]

    def _own_execution(self, state_machine: str, key: str, execution_input: Any) -> Optional[Dict[str, Any]]:
        """The execution named `key` of this state machine, if its input is ours; else None."""
        for machine in self.state_machines():
            if state_machine in (machine["name"], machine["stateMachineArn"]):
                arn = machine["stateMachineArn"].replace(":stateMachine:", ":execution:", 1) + ":" + key
                break
        else:
            return None
        described = self.describe(arn)
        recorded = described.get("input")
        # With passCallerContext the recorded input wraps the client's: {"input": ..., "caller": ...}.
        if recorded != execution_input and not (isinstance(recorded, dict) and recorded.get("input") == execution_input
                                                and "caller" in recorded):
            return None
        return {name: described.get(name) for name in ("executionArn", "startDate", "name", "stateMachine")}

    def _answer(self, approval_id: str, verb: str, comment: Optional[str], data: Optional[Dict[str, Any]]
                ) -> Dict[str, Any]:
        body = {key: value for key, value in (("comment", comment), ("data", data)) if value is not None}
        return self._call("POST", self._approval_route(approval_id) + "/" + verb, body=body)[1]

    def _approval_route(self, approval_id: str) -> str:
        return "/approvals/" + quote(approval_id, safe="")

    def _execution_route(self, execution_arn: str) -> str:
        return "/executions/" + quote(execution_arn, safe="")

    def _execution_path(self, execution_arn: str) -> str:
        return self._base_path + self._execution_route(execution_arn)

    # --- HTTP ------------------------------------------------------------------------------------

    def _call(self, method: str, route: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None,
              headers: Optional[Mapping[str, str]] = None, sign: bool = True, routed: bool = True,
              read_timeout: Optional[float] = None) -> Tuple[int, Any, Mapping[str, str]]:
        """Send one request (retrying 429/503); returns (status, JSON body, headers) or raises ApiError."""
        path = (self._base_path + route) if routed else route
        url = self._origin + path + ("?" + urlencode(query) if query else "")
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            request_headers = {"Accept": "application/json", "User-Agent": _USER_AGENT, **(headers or {})}
            if data is not None:
                request_headers["Content-Type"] = "application/json"
            if sign:
                request_headers = self._authorize(method, url, data, request_headers)
            response = self._send(method, url, data, request_headers, read_timeout)
            answer = _json_body(response.data)
            if response.status < 400:
                if not isinstance(answer, (dict, list)):
                    # A redirect or an HTML page: the URL points somewhere other than the gateway.
                    raise ApiError(response.status, None, f"The answer from {url} is not the gateway's JSON; "
                                                          "check the URL (it must include the stage, e.g. /api).")
                # urllib3's headers match names case-insensitively (HTTP/2 proxies send `location`).
                return response.status, answer, response.headers
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if _worth_retrying(response.status, answer, retry_after) and attempt < self._max_attempts:
                time.sleep(self._retry_delay(attempt, retry_after))
                continue
            error = error_from_response(response.status, answer, retry_after)
            error.attempts = attempt
            raise error

    def _send(self, method, url, data, headers, read_timeout):
        timeout = urllib3.Timeout(connect=min(self._timeout, 10.0), read=read_timeout or self._timeout)
        try:
            return self._http.request(method, url, body=data, headers=headers, timeout=timeout,
                                      retries=False, redirect=False)
        except urllib3.exceptions.HTTPError as err:
            raise GatewayUnreachable(f"Could not reach the gateway at {self.url}: {err}") from err

    def _retry_delay(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_retry_wait)
        # Full jitter keeps many clients that were throttled together from retrying together.
        return random.uniform(0, min(self._max_retry_wait, 0.5 * 2 ** (attempt - 1)))

    def _authorize(self, method: str, url: str, data: Optional[bytes], headers: Dict[str, str]) -> Dict[str, str]:
        if self._token is not None:
            return {**headers, "Authorization": f"Bearer {self._token}"}
        credentials, region = self._signing_identity()
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers)

    def _signing_identity(self):
        if self._credentials is None:
            # Imported here: botocore.session pulls in the whole SDK client (~0.1 s), which
            # bearer-token callers and `--help` never need.
            import botocore.session

            try:
                session = botocore.session.Session(profile=self._profile)
                credentials = session.get_credentials()
                # AWS_REGION first, as the AWS CLI v2 and Lambda have it; botocore reads only the rest.
                region = self._region or os.environ.get("AWS_REGION") or session.get_config_variable("region")
            except BotoCoreError as err:
                raise ConfigurationError(f"Cannot load AWS credentials: {err}") from err
            if credentials is None:
                raise ConfigurationError(
                    "No AWS credentials found: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, use a profile "
                    "(--profile or AWS_PROFILE), or pass a bearer token (--token or SFN_GATEWAY_TOKEN)."
                )
            if not region:
                raise ConfigurationError(
                    "No region to sign for: pass --region (or region=), or set AWS_REGION; it is found "
                    "automatically only for *.execute-api.<region>.amazonaws.com URLs."
                )
            self._credentials, self._region = credentials, region
        return self._credentials, self._region


def _worth_retrying(status: int, answer: Any, retry_after: Optional[float]) -> bool:
    """429/503 are retried, except a gateway error that gives no Retry-After.

    The gateway sends Retry-After with its transient errors (Throttled, BackendUnavailable) and
    leaves it out where seconds will not help (ExecutionLimitExceeded: a quota of open executions;
    KmsKeyUnavailable: a disabled key). API Gateway's own 429/503 (no Code) are always retried.
    """
    if status not in RETRYABLE_STATUSES:
        return False
    has_code = isinstance(answer, dict) and isinstance(answer.get("Code"), str)
    return retry_after is not None or not has_code


def _server_wait(wait: float) -> int:
    return max(1, min(MAX_SERVER_WAIT, math.ceil(wait)))


def _read_timeout(timeout: float, wait: Optional[float]) -> float:
    return max(timeout, min(wait or 0, MAX_SERVER_WAIT) + _READ_MARGIN)


def _json_body(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8")) if data else None
    except (UnicodeDecodeError, ValueError):
        return data.decode("utf-8", "replace")


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: an integer, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
