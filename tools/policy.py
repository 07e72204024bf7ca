"""Generate each stage's least-privilege IAM policy from its STATE_MACHINES allow-list.

Chalice's automatic policy reads app.py only, so it misses the Step Functions calls made
in chalicelib/ and would grant them on Resource "*". Each stage instead names a policy
file in .chalice/config.json ("autogen_policy": false, "iam_policy_file"), which this
tool writes:

    python -m tools.policy --all            # regenerate every stage's file
    python -m tools.policy --stage prod     # one stage
    python -m tools.policy --all --check    # exit 1 if a committed file is stale
"""
import argparse
import json
import sys
from pathlib import Path

from chalicelib.config import config_from_environ
from chalicelib.errors import GatewayMisconfigured
from chalicelib.stepfunctions.registry import execution_arn

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_DIR = PROJECT_DIR / ".chalice"

STANDARD_ACTIONS = ("states:DescribeStateMachine", "states:ListExecutions", "states:StartExecution")
# The gateway refuses to start EXPRESS machines asynchronously or read their executions.
EXPRESS_ACTIONS = ("states:DescribeStateMachine", "states:StartSyncExecution")
EXECUTION_ACTIONS = (
    "states:DescribeExecution",
    "states:GetExecutionHistory",
    "states:RedriveExecution",
    "states:StopExecution",
)
# SendTask* take a task token, not an ARN: IAM cannot scope them to a resource, and the
# token itself is the capability, so whoever holds one may complete that task.
TASK_TOKEN_ACTIONS = ("states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess")
TASK_TOKEN_SID = "TaskTokensAreBearerCapabilitiesAndCannotBeScopedByResource"
# Step Functions encrypts and decrypts a machine's data with the caller's rights on its key.
KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# A policy file replaces Chalice's generated policy verbatim, so it must also grant
# what the stage's Lambda functions need to write their logs (and nothing more).
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# IAM authorises a version or alias against its state machine's unqualified ARN; this
# condition key narrows the grant to the listed qualifiers.
QUALIFIER_CONDITION_KEY = "states:StateMachineQualifier"


def execution_resource(state_machine_arn: str) -> str:
    """The ARN pattern matching every execution of a state machine (or of its versions and aliases)."""
    return execution_arn(state_machine_arn, "*")


def log_resources(partition: str, function_prefix: str) -> list:
    """The log groups of the stage's functions (the API handler and any other handler of the stage)."""
    group = f"arn:{partition}:logs:*:*:log-group:/aws/lambda/{function_prefix}"
    return [group, group + ":*", group + "-*"]


def _statement(sid: str, actions, resources, condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": sorted(set(resources))}
    if condition:
        statement["Condition"] = condition
    return statement


def _machine_statements(sid: str, actions, machines) -> list:
    statements = []
    unqualified = [machine.arn for machine in machines if machine.qualifier is None]
    if unqualified:
        statements.append(_statement(sid, actions, unqualified))
    releases: dict = {}
    for machine in machines:
        if machine.qualifier is not None:
            releases.setdefault(machine.unqualified_arn, set()).add(machine.qualifier)
    for index, (arn, qualifiers) in enumerate(sorted(releases.items()), start=1):
        condition = {"StringEquals": {QUALIFIER_CONDITION_KEY: sorted(qualifiers)}}
        statements.append(_statement(f"{sid}Releases{index}", actions, [arn], condition))
    return statements


def policy_for_environment(environ, function_prefix: str = "sfn-gateway-*") -> dict:
    """The least-privilege policy for a stage with these environment variables."""
    # The gateway's own parser, so a stage the gateway would refuse gets no policy either.
    config = config_from_environ(environ)
    machines = list(config.registry)
    standard = [machine for machine in machines if not machine.is_express]
    express = [machine for machine in machines if machine.is_express]
    partition = machines[0].arn.split(":")[1]
    statements = [
        *_machine_statements("StandardStateMachines", STANDARD_ACTIONS, standard),
        *_machine_statements("ExpressStateMachines", EXPRESS_ACTIONS, express),
        _statement("Logs", LOG_ACTIONS, log_resources(partition, function_prefix)),
    ]
    if standard:
        statements.append(_statement("Executions", EXECUTION_ACTIONS, [execution_resource(m.arn) for m in standard]))
    keys = [machine.kms_key_arn for machine in machines if machine.kms_key_arn]
    if keys:
        statements.append(_statement("StateMachineKeys", KMS_ACTIONS, keys))
    if config.task_routes:
        statements.append(_statement(TASK_TOKEN_SID, TASK_TOKEN_ACTIONS, ["*"]))
    return {"Version": "2012-10-17", "Statement": sorted(statements, key=lambda s: s["Sid"])}


def parameter_arn(subscription) -> str:
    """The SSM parameter ARN of a subscription's secret, in the account and region of its state machines."""
    _, partition, _, region, account = subscription.state_machine_arns[0].split(":")[:5]
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{subscription.secret_parameter.lstrip('/')}"


def webhook_policy_for_environment(environ, function_name: str = "sfn-gateway-*-webhooks") -> dict | None:
    """The webhooks function's own policy: its secrets and DescribeExecution on subscribed machines; None without WEBHOOKS."""
    config = config_from_environ(environ)
    subscriptions = config.webhooks
    if not subscriptions:
        return None
    machines = {arn for subscription in subscriptions for arn in subscription.state_machine_arns}
    partition = next(iter(machines)).split(":")[1]
    statements = [
        _statement("Logs", LOG_ACTIONS, log_resources(partition, function_name)),
        _statement("WebhookSecrets", ("ssm:GetParameter",), {parameter_arn(s) for s in subscriptions}),
        # DescribeExecution only when EventBridge left a large input/output out of the event.
        _statement("SubscribedExecutions", ("states:DescribeExecution",), [execution_resource(arn) for arn in machines]),
    ]
    # Only customer managed keys need this: the secrets' keys (the default aws/ssm key is granted
    # through SSM), and the subscribed machines' keys, which DescribeExecution decrypts with.
    keys = {s.kms_key_arn for s in subscriptions if s.kms_key_arn} | {
        m.kms_key_arn for m in config.registry if m.kms_key_arn and m.unqualified_arn in machines
    }
    if keys:
        statements.append(_statement("WebhookSecretKeys", ("kms:Decrypt",), keys))
    return {"Version": "2012-10-17", "Statement": sorted(statements, key=lambda s: s["Sid"])}


def webhook_policy_for_stage(config: dict, stage: str) -> dict | None:
    """The webhooks function's policy for one stage (None when the stage has no WEBHOOKS)."""
    name = f"{config.get('app_name', 'sfn-gateway')}-{stage}-webhooks"
    return webhook_policy_for_environment(stage_environment(config, stage), name)


def webhook_policy_path(stage: str, chalice_dir: Path = CHALICE_DIR) -> Path:
    """Where a stage's webhooks-function policy file lives (named in its lambda_functions.webhooks)."""
    return chalice_dir / f"policy-{stage}-webhooks.json"


# The approvals functions' own roles hold only their logs here; their grants on the table and
# queues name resources the package creates, so tools/package.py adds them (docs/approvals.md).
APPROVAL_FUNCTIONS = ("approvals_consumer", "approvals_closer")


def approvals_function_policies(config: dict, stage: str) -> dict:
    """{function name: policy} for the approvals functions of an APPROVALS=on stage (else empty)."""
    from chalicelib.approvals.triggers import enabled

    environment = stage_environment(config, stage)
    if not enabled(environment):
        return {}
    config_from_environ(environment)  # a stage the gateway would refuse gets no policy either
    partition = json.loads(environment["STATE_MACHINES"])
    partition = next(iter(partition.values()))["arn"].split(":")[1]
    app_name = config.get("app_name", "sfn-gateway")
    return {
        name: {"Version": "2012-10-17", "Statement": [
            _statement("Logs", LOG_ACTIONS, log_resources(partition, f"{app_name}-{stage}-{name}"))]}
        for name in APPROVAL_FUNCTIONS
    }


def approvals_policy_path(stage: str, function: str, chalice_dir: Path = CHALICE_DIR) -> Path:
    """Where an approvals function's policy file lives (named in its lambda_functions entry)."""
    return chalice_dir / f"policy-{stage}-{function}.json"


def stage_environment(config: dict, stage: str) -> dict:
    """A stage's environment variables, merged over the top-level ones as Chalice does."""
    if stage not in config.get("stages", {}):
        raise KeyError(f"Stage {stage!r} is not in .chalice/config.json; stages: {sorted(config.get('stages', {}))}.")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def policy_for_stage(config: dict, stage: str) -> dict:
    """The least-privilege policy for one stage of a Chalice config."""
    # Chalice names the stage's functions <app_name>-<stage>[-<handler>].
    return policy_for_environment(stage_environment(config, stage), f"{config.get('app_name', 'sfn-gateway')}-{stage}")


def render(policy: dict) -> str:
    """The policy as stable text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"


def policy_path(stage: str, chalice_dir: Path = CHALICE_DIR) -> Path:
    """Where a stage's policy file lives."""
    return chalice_dir / f"policy-{stage}.json"


def load_config(chalice_dir: Path = CHALICE_DIR) -> dict:
    """The project's .chalice/config.json."""
    return json.loads((chalice_dir / "config.json").read_text())


def main(argv=None, chalice_dir: Path = CHALICE_DIR) -> int:
    """Write (or with --check, compare) the policy file of the chosen stages."""
    parser = argparse.ArgumentParser(prog="python -m tools.policy", description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--stage", action="append", help="stage to generate (repeatable)")
    which.add_argument("--all", action="store_true", help="every stage in .chalice/config.json")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)

    config = load_config(chalice_dir)
    stages = sorted(config.get("stages", {})) if args.all else args.stage
    stale = []
    files = []
    for stage in stages:
        try:
            files.append((policy_path(stage, chalice_dir), render(policy_for_stage(config, stage))))
            webhook_policy = webhook_policy_for_stage(config, stage)
            for function, approvals_policy in approvals_function_policies(config, stage).items():
                files.append((approvals_policy_path(stage, function, chalice_dir), render(approvals_policy)))
        except (KeyError, GatewayMisconfigured) as err:
            print(f"{stage}: {err}", file=sys.stderr)
            return 2
        if webhook_policy:
            files.append((webhook_policy_path(stage, chalice_dir), render(webhook_policy)))
    for path, text in files:
        current = path.read_text() if path.exists() else None
        if text == current:
            print(f"{path.relative_to(chalice_dir.parent)}: up to date")
        elif args.check:
            stale.append(path)
            print(f"{path.relative_to(chalice_dir.parent)}: stale; run `make policy`", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"{path.relative_to(chalice_dir.parent)}: written")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
