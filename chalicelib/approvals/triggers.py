"""What Chalice must know while it builds the app on APPROVALS=on stages: the queue and the closer's rule.

Read when app.py is imported (`chalice package/deploy/local` load the stage's variables first),
so this module stays light: the rest of chalicelib.approvals is imported only by the functions that use it
(chalicelib/approvals/wiring.py).
"""
import re

from chalicelib.setting_rules import fail as _fail

# SQS queue names: 1-80 letters, digits, - and _
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html).
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}\Z")


def enabled(environ) -> bool:
    """APPROVALS=on (unset: off, and nothing of chalicelib.approvals is loaded at cold start)."""
    if not (environ.get("APPROVALS") or "").strip():
        return False
    from chalicelib.approvals.settings import approvals_enabled

    return approvals_enabled(environ)


def queue_name(environ) -> str | None:
    """The name of the stage's approvals queue (APPROVALS_QUEUE), which the consumer function reads; None when off."""
    if not enabled(environ):
        return None
    name = (environ.get("APPROVALS_QUEUE") or "").strip()
    if not _QUEUE_NAME.match(name):
        raise _fail(
            "APPROVALS=on needs APPROVALS_QUEUE, the name of the stage's approvals queue (1-80 letters, digits, "
            f"- or _; one per stage, e.g. \"sfn-gateway-prod-approvals\"), got {name!r}."
        )
    return name


def _refuse_ambiguous_aliases(machines) -> None:
    # An approval names its execution, never the alias or version that started it: with two such
    # entries and no unqualified one, whose access rules decide would be a guess (issue 17, item 4).
    entries = {}
    for machine in machines:
        entries.setdefault(machine.unqualified_arn, []).append(machine)
    for arn, listed in entries.items():
        if len(listed) > 1 and all(machine.qualifier for machine in listed):
            names = sorted(machine.name for machine in listed)
            raise _fail(
                f"APPROVALS=on: state machine {arn} is listed only through its aliases or versions {names}, and an "
                "approval does not say which one started its execution. Add the unqualified entry (its \"arn\" "
                "without the qualifier) to STATE_MACHINES; its access rules decide who may answer its approvals."
            )


def closer_pattern(environ) -> dict | None:
    """The EventBridge pattern that closes approvals when an execution of the stage's machines ends."""
    if not enabled(environ):
        return None
    from chalicelib.stepfunctions.settings import parse_state_machines
    from chalicelib.webhooks.rule import EVENT_DETAIL_TYPE, EVENT_SOURCE
    from chalicelib.webhooks.settings import WEBHOOK_STATUSES as ENDED_STATUSES

    machines = parse_state_machines(environ.get("STATE_MACHINES"))
    _refuse_ambiguous_aliases(machines)
    standard = sorted({machine.unqualified_arn for machine in machines if not machine.is_express})
    if not standard:
        raise _fail("APPROVALS=on needs at least one STANDARD state machine in STATE_MACHINES "
                    "(EXPRESS workflows cannot wait for a task token).")
    return {
        "source": [EVENT_SOURCE],
        "detail-type": [EVENT_DETAIL_TYPE],
        "detail": {"stateMachineArn": standard, "status": list(ENDED_STATUSES)},
    }


def inbox_page_served(environ) -> bool:
    """Whether the stage serves the inbox page (/inbox): approvals on, and people sign in with tokens (jwt, cognito)."""
    from chalicelib.auth.identity import auth_mode
    from chalicelib.partners.plans import api_keys_required

    served = enabled(environ) and auth_mode(environ) in ("jwt", "cognito")
    # A browser page holds the person's token, never a partner's API key: every API call it makes would get 403.
    if served and api_keys_required(environ):
        raise _fail(
            "The approvals inbox page (APPROVALS=on with AUTH_MODE=jwt or cognito) cannot share a stage with "
            "USAGE_PLANS: the page calls /approvals without a partner's x-api-key. Serve people from a stage "
            "without USAGE_PLANS (it may list the same state machines), or set APPROVALS=off on the partners' stage."
        )
    return served
