"""The `sfn-gateway` command: JSON on stdout when piped, readable text on a terminal, messages on stderr."""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any, Dict, Iterable, List, Optional

from sfn_gateway_client import __version__
from sfn_gateway_client.errors import ApiError, ConfigurationError, GatewayUnreachable
from sfn_gateway_client.gateway import Gateway, is_ended

EXIT_OK = 0
EXIT_EXECUTION_FAILED = 1  # the execution ended FAILED, TIMED_OUT or ABORTED
EXIT_USAGE = 2
EXIT_API_ERROR = 3
EXIT_STILL_RUNNING = 4  # still running when the deadline passed
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
DEFAULT_LIST_LIMIT = 100


class UsageError(Exception):
    """A bad argument the parser cannot see (bad JSON input, unreadable file)."""


# --- arguments -------------------------------------------------------------------------------


def _add_connection_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    # Accepted before and after the command; after it, only what is given overrides.
    value = (lambda default: default) if defaults else (lambda default: argparse.SUPPRESS)
    group = parser.add_argument_group("connection")
    group.add_argument("--url", default=value(os.environ.get("SFN_GATEWAY_URL")),
                       help="the gateway's URL, stage included (default: $SFN_GATEWAY_URL)")
    group.add_argument("--profile", default=value(None), help="AWS profile to sign with (default: the standard chain)")
    group.add_argument("--region", default=value(None),
                       help="region to sign for (default: from an execute-api URL, else the standard chain)")
    group.add_argument("--token", default=value(os.environ.get("SFN_GATEWAY_TOKEN")),
                       help="send `Authorization: Bearer TOKEN` instead of SigV4 (default: $SFN_GATEWAY_TOKEN)")
    group.add_argument("--output", choices=("json", "text"), default=value(None),
                       help="json (default when stdout is not a terminal) or text")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfn-gateway",
        description="Start and follow AWS Step Functions executions through an sfn-gateway API.",
        epilog="Exit codes: 0 success; 1 the execution ended FAILED, TIMED_OUT or ABORTED; 2 usage error; "
               "3 API error; 4 still running at the deadline.",
    )
    parser.add_argument("--version", action="version", version=f"sfn-gateway {__version__}")
    _add_connection_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_connection_options(sub, defaults=False)
        return sub

    machines = command("machines", "list the allow-listed state machines, or describe one")
    machines.add_argument("name", nargs="?", help="describe this state machine (definition included)")

    start = command("start", "start an execution of a STANDARD state machine")
    start.add_argument("name", metavar="NAME", help="state machine (short name or allow-listed ARN)")
    _add_input(start)
    start.add_argument("--name", dest="execution_name", metavar="N", help="execution name (also the idempotency key)")
    start.add_argument("--idempotency-key", metavar="K", help="retry-safe key (default: a new UUID per command)")
    start.add_argument("--wait", type=_seconds, metavar="SECONDS", help="wait up to SECONDS for the result")

    run = command("run", "run an EXPRESS state machine synchronously and print its result")
    run.add_argument("name", metavar="NAME")
    _add_input(run)
    run.add_argument("--name", dest="execution_name", metavar="N", help="execution name")

    describe = command("describe", "describe an execution")
    describe.add_argument("arn", metavar="ARN")

    wait = command("wait", "wait for an execution to end and print it")
    wait.add_argument("arn", metavar="ARN")
    wait.add_argument("--timeout", type=_seconds, metavar="S", help="give up after S seconds (exit 4)")

    listing = command("list", "list executions of a state machine, newest first (one JSON object per line)")
    listing.add_argument("name", metavar="NAME")
    listing.add_argument("--status", choices=STATUSES)
    how_many = listing.add_mutually_exclusive_group()
    how_many.add_argument("--limit", type=_positive, metavar="N", help=f"at most N (default {DEFAULT_LIST_LIMIT})")
    how_many.add_argument("--all", action="store_true", help="every execution, page after page")
    listing.add_argument("--page-size", type=_positive, metavar="N", help="executions per request (1-1000)")

    history = command("history", "an execution's events (one JSON object per line)")
    history.add_argument("arn", metavar="ARN")
    history.add_argument("--reverse", action="store_true", help="newest first")
    history.add_argument("--follow", action="store_true", help="print events as they happen until the end")
    history.add_argument("--page-size", type=_positive, metavar="N", help="events per request (1-1000)")

    stop = command("stop", "stop a running execution")
    stop.add_argument("arn", metavar="ARN")
    stop.add_argument("--error")
    stop.add_argument("--cause")

    redrive = command("redrive", "redrive a failed, aborted or timed-out execution")
    redrive.add_argument("arn", metavar="ARN")
    redrive.add_argument("--idempotency-key", metavar="K", help="retry-safe key (default: a new UUID per command)")

    task = command("task", "answer a task token (approvals): success, failure or heartbeat")
    answers = task.add_subparsers(dest="answer", metavar="ANSWER", required=True)
    success = answers.add_parser("success", help="the task succeeds with --task-output")
    failure = answers.add_parser("failure", help="the task fails with --error / --cause")
    heartbeat = answers.add_parser("heartbeat", help="the task is still being worked on")
    for sub in (success, failure, heartbeat):
        _add_connection_options(sub, defaults=False)
        sub.add_argument("task_token", metavar="TOKEN", help="the task token, or - to read it from stdin")
    success.add_argument("--task-output", metavar="JSON|@FILE|-", type=_json_argument,
                         help="the task's output (default {})")
    failure.add_argument("--error")
    failure.add_argument("--cause")

    approvals = command("approvals", "the approvals inbox: list, show, approve or reject")
    actions = approvals.add_subparsers(dest="action", metavar="ACTION", required=True)
    listed = actions.add_parser("list", help="pending approvals you may answer, newest first (one JSON object per line)")
    show = actions.add_parser("show", help="one approval with its details and status")
    approve = actions.add_parser("approve", help="approve: the workflow gets decision \"approved\"")
    reject = actions.add_parser("reject", help="reject: the workflow gets decision \"rejected\"")
    for sub in (listed, show, approve, reject):
        _add_connection_options(sub, defaults=False)
    for sub in (show, approve, reject):
        sub.add_argument("approval_id", metavar="ID")
    for sub in (approve, reject):
        sub.add_argument("--comment", metavar="C", help="a comment the workflow receives")
        sub.add_argument("--data", metavar="JSON|@FILE|-", type=_json_object_argument,
                         help="a JSON object the workflow receives as data")
    return parser


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="JSON|@FILE|-", type=_json_argument,
                        help="execution input: JSON text, @file, or - for stdin (default {})")


def _json_argument(text: str) -> Any:
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as handle:
                text = handle.read()
        except OSError as err:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {err.strerror}")
    try:
        return json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})")


def _json_object_argument(text: str) -> Any:
    value = _json_argument(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    if not 0 <= value < 1e7:
        raise argparse.ArgumentTypeError("seconds must be 0 or more")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return int(text)


# --- output ----------------------------------------------------------------------------------


class Output:
    """Writes results to stdout as JSON or text, and progress to stderr on a terminal."""

    def __init__(self, mode: Optional[str]):
        self.json = (mode or ("text" if sys.stdout.isatty() else "json")) == "json"

    def document(self, value: Any, text: str) -> None:
        print(json.dumps(value, indent=2) if self.json else text, flush=True)

    def line(self, value: Any, text: str) -> None:
        print(json.dumps(value, separators=(",", ":")) if self.json else text, flush=True)


class Progress:
    """`RUNNING  12.4 s` on stderr, redrawn in place while waiting; silent unless stderr is a terminal."""

    def __init__(self, label: str):
        self._label = label
        self._status = "RUNNING"
        self._started = time.monotonic()
        self._done = threading.Event()
        self._thread = None
        if sys.stderr.isatty():
            self._thread = threading.Thread(target=self._draw_until_done, daemon=True)
            self._thread.start()

    def update(self, description: Dict[str, Any], elapsed: float) -> None:
        self._status = description.get("status") or self._status

    def _draw_until_done(self) -> None:
        while not self._done.wait(0.2):
            elapsed = time.monotonic() - self._started
            sys.stderr.write(f"\r\x1b[K{self._label}  {self._status}  {elapsed:5.1f} s")
            sys.stderr.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _fields(value: Dict[str, Any], names: Iterable[str]) -> str:
    width = max(len(name) for name in names)
    return "\n".join(f"{name + ':':<{width + 1}} {_compact(value[name])}" for name in names
                     if value.get(name) is not None)


def _execution_text(description: Dict[str, Any]) -> str:
    return _fields(description, ("status", "executionArn", "name", "stateMachine", "startDate", "stopDate",
                                 "input", "output", "error", "cause", "redriveCount"))


def _table(rows: List[List[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _event_text(event: Dict[str, Any]) -> str:
    details = next((value for key, value in event.items() if key.endswith("EventDetails")), None)
    text = f"{event['id']:>4}  {event.get('timestamp', '')}  {event['type']}"
    return text + ("  " + _compact(details) if details else "")


def _outcome(description: Dict[str, Any]) -> int:
    if not is_ended(description):
        return EXIT_STILL_RUNNING
    return EXIT_OK if description["status"] == "SUCCEEDED" else EXIT_EXECUTION_FAILED


# --- commands --------------------------------------------------------------------------------


def _machines(gateway: Gateway, args, out: Output) -> int:
    if args.name:
        described = gateway.describe_state_machine(args.name)
        out.document(described, _fields(described, ("name", "type", "status", "stateMachineArn", "creationDate"))
                     + "\ndefinition:\n" + json.dumps(described.get("definition"), indent=2))
        return EXIT_OK
    machines = gateway.state_machines()
    rows = [["NAME", "TYPE", "ARN"]] + [[m["name"], m["type"], m["stateMachineArn"]] for m in machines]
    out.document(machines, _table(rows))
    return EXIT_OK


def _start(gateway: Gateway, args, out: Output) -> int:
    if args.wait:
        with Progress(f"{args.name}") as progress:
            described = gateway.start(args.name, args.input, name=args.execution_name,
                                      idempotency_key=args.idempotency_key, wait=args.wait,
                                      on_progress=progress.update)
        out.document(described, _execution_text(described))
        return _outcome(described)
    started = gateway.start(args.name, args.input, name=args.execution_name, idempotency_key=args.idempotency_key)
    out.document(started, _fields(started, ("executionArn", "name", "stateMachine", "startDate")))
    return EXIT_OK


def _run(gateway: Gateway, args, out: Output) -> int:
    with Progress(args.name):
        result = gateway.run(args.name, args.input, name=args.execution_name)
    out.document(result, _execution_text(result))
    return _outcome(result)


def _describe(gateway: Gateway, args, out: Output) -> int:
    described = gateway.describe(args.arn)
    out.document(described, _execution_text(described))
    return EXIT_OK


def _wait(gateway: Gateway, args, out: Output) -> int:
    with Progress(args.arn.rsplit(":", 1)[-1]) as progress:
        described = gateway.wait(args.arn, timeout=args.timeout, on_progress=progress.update)
    out.document(described, _execution_text(described))
    if not is_ended(described):
        print(f"Still {described.get('status')} after {args.timeout:g} s.", file=sys.stderr)
    return _outcome(described)


def _list(gateway: Gateway, args, out: Output) -> int:
    limit = None if args.all else (args.limit or DEFAULT_LIST_LIMIT)
    page_size = args.page_size or (1000 if limit is None else min(limit, 1000))
    listed = 0
    for execution in gateway.executions(args.name, status=args.status, page_size=page_size):
        out.line(execution, "  ".join(str(execution.get(key) or "") for key in
                                      ("status", "startDate", "name", "executionArn")))
        listed += 1
        if limit is not None and listed >= limit:
            break
    return EXIT_OK


def _history(gateway: Gateway, args, out: Output) -> int:
    if args.follow:
        if args.reverse:
            raise UsageError("--follow prints events oldest first; it cannot be combined with --reverse")
        last = None
        for last in gateway.follow(args.arn):
            out.line(last, _event_text(last))
        return EXIT_OK if last is not None and last["type"] == "ExecutionSucceeded" else EXIT_EXECUTION_FAILED
    for event in gateway.history(args.arn, reverse=args.reverse, page_size=args.page_size or 1000):
        out.line(event, _event_text(event))
    return EXIT_OK


def _stop(gateway: Gateway, args, out: Output) -> int:
    stopped = gateway.stop(args.arn, error=args.error, cause=args.cause)
    out.document(stopped, f"Stopped at {stopped.get('stopDate')}.")
    return EXIT_OK


def _redrive(gateway: Gateway, args, out: Output) -> int:
    redriven = gateway.redrive(args.arn, idempotency_key=args.idempotency_key)
    out.document(redriven, f"Redriven at {redriven.get('redriveDate')}.")
    return EXIT_OK


def _task(gateway: Gateway, args, out: Output) -> int:
    token = sys.stdin.read().strip() if args.task_token == "-" else args.task_token
    if args.answer == "success":
        answer = gateway.send_task_success(token, args.task_output)
    elif args.answer == "failure":
        answer = gateway.send_task_failure(token, error=args.error, cause=args.cause)
    else:
        answer = gateway.send_task_heartbeat(token)
    out.document(answer, f"Task {args.answer} sent.")
    return EXIT_OK


def _approval_text(approval: Dict[str, Any]) -> str:
    return _fields(approval, ("id", "status", "title", "stateMachine", "executionArn", "createdAt", "expiresAt",
                              "candidateGroups", "candidateUsers", "answeredBy", "answeredAt", "comment", "details"))


def _approvals(gateway: Gateway, args, out: Output) -> int:
    if args.action == "list":
        for approval in gateway.approvals():
            out.line(approval, "  ".join(str(approval.get(key) or "") for key in
                                         ("id", "createdAt", "stateMachine", "title")))
        return EXIT_OK
    if args.action == "show":
        approval = gateway.approval(args.approval_id)
    else:
        answer = gateway.approve if args.action == "approve" else gateway.reject
        approval = answer(args.approval_id, comment=args.comment, data=args.data)
    out.document(approval, _approval_text(approval))
    return EXIT_OK


COMMANDS = {
    "machines": _machines, "start": _start, "run": _run, "describe": _describe, "wait": _wait,
    "list": _list, "history": _history, "stop": _stop, "redrive": _redrive, "task": _task,
    "approvals": _approvals,
}


def main(argv: Optional[List[str]] = None) -> int:
    """Run one `sfn-gateway` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no gateway URL: pass --url or set SFN_GATEWAY_URL")
    try:
        gateway = Gateway(args.url, region=args.region, profile=args.profile, token=args.token)
        with gateway:
            return COMMANDS[args.command](gateway, args, Output(args.output))
    except (ConfigurationError, UsageError) as err:
        print(f"sfn-gateway: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as err:
        code = f"{err.code} ({err.status})" if err.code else f"HTTP {err.status}"
        print(f"sfn-gateway: {code}: {err.message}", file=sys.stderr)
        return EXIT_API_ERROR
    except GatewayUnreachable as err:
        print(f"sfn-gateway: {err}", file=sys.stderr)
        return EXIT_API_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `sfn-gateway list ... | head` closes the pipe early; that is not an error. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
