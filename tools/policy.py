"""Generate each stage's least-privilege IAM policy from its STATE_MACHINES allow-list.

Chalice's automatic policy reads app.py only, so it misses the Step Functions calls made
in chalicelib/ and would grant them on Resource "*". Each stage instead names its own policy
file in .chalice/config.json ("autogen_policy": false, "iam_policy_file"), which this
tool writes (the file the stage names, so a copied stage cannot deploy with another's):

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


# Chalice names an authorizer's function <app>-<stage>-<authorizer>; the one shared policy file
# covers that function of every stage, and only its log groups.
JWT_AUTHORIZER_POLICY_FILE = "policy-jwt-authorizer.json"


def via_service(service: str, regions) -> dict:
    """A condition that lets a KMS grant be used only through this AWS service (kms:ViaService)."""
    return {"StringEquals": {"kms:ViaService": sorted(f"{service}.{region}.amazonaws.com" for region in set(regions))}}


def _region(arn: str) -> str:
    return arn.split(":")[3]


def stage_secret_arn(config) -> str:
    """The SSM parameter ARN of the stage secret, in the account and region of the stage's state machines."""
    _, partition, _, region, account = next(iter(config.registry)).arn.split(":")[:5]
    return f"arn:{partition}:ssm:{region}:{account}:parameter/{config.stage_secret_parameter.lstrip('/')}"


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
        # Only Step Functions may use the machines' keys with the gateway's rights.
        statements.append(_statement("StateMachineKeys", KMS_ACTIONS, keys, via_service("states", map(_region, keys))))
    if config.stage_secret_parameter:
        secret = stage_secret_arn(config)
        statements.append(_statement("StageSecret", ("ssm:GetParameter",), [secret]))
    if config.stage_secret_kms_key_arn:
        # The SecureString's customer managed key, usable through SSM only (the default aws/ssm key needs no grant).
        key = config.stage_secret_kms_key_arn
        statements.append(_statement("StageSecretKey", ("kms:Decrypt",), [key], via_service("ssm", [_region(key)])))
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
    secret_keys = {s.kms_key_arn for s in subscriptions if s.kms_key_arn}
    if secret_keys:
        statements.append(_statement("WebhookSecretKeys", ("kms:Decrypt",), secret_keys,
                                     via_service("ssm", map(_region, secret_keys))))
    machine_keys = {m.kms_key_arn for m in config.registry if m.kms_key_arn and m.unqualified_arn in machines}
    if machine_keys:
        statements.append(_statement("SubscribedMachineKeys", ("kms:Decrypt",), machine_keys,
                                     via_service("states", map(_region, machine_keys))))
    return {"Version": "2012-10-17", "Statement": sorted(statements, key=lambda s: s["Sid"])}


def webhook_policy_for_stage(config: dict, stage: str) -> dict | None:
    """The webhooks function's policy for one stage (None when the stage has no WEBHOOKS)."""
    name = f"{config.get('app_name', 'sfn-gateway')}-{stage}-webhooks"
    return webhook_policy_for_environment(stage_environment(config, stage), name)


def webhook_policy_path(stage: str, chalice_dir: Path = CHALICE_DIR, config: dict | None = None) -> Path:
    """The policy file a stage names for its webhooks function (lambda_functions.webhooks.iam_policy_file)."""
    return chalice_dir / named_policy_file(load_config(chalice_dir) if config is None else config, stage,
                                           WEBHOOKS_FUNCTION)


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


def approvals_policy_path(stage: str, function: str, chalice_dir: Path = CHALICE_DIR, config: dict | None = None) -> Path:
    """The policy file a stage names for one of its approvals functions (lambda_functions.<function>.iam_policy_file)."""
    return chalice_dir / named_policy_file(load_config(chalice_dir) if config is None else config, stage, function)


def stage_environment(config: dict, stage: str) -> dict:
    """A stage's environment variables, merged over the top-level ones as Chalice does."""
    if stage not in config.get("stages", {}):
        raise KeyError(f"Stage {stage!r} is not in .chalice/config.json; stages: {sorted(config.get('stages', {}))}.")
    return {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}


def policy_for_stage(config: dict, stage: str) -> dict:
    """The least-privilege policy for one stage of a Chalice config."""
    # Chalice names the stage's functions <app_name>-<stage>[-<handler>].
    return policy_for_environment(stage_environment(config, stage), f"{config.get('app_name', 'sfn-gateway')}-{stage}")


def jwt_authorizer_policy(app_name: str = "sfn-gateway", partition: str = "aws") -> dict:
    """The JWT authorizer function's policy: its own log groups, nothing else (it calls no AWS API)."""
    group = f"arn:{partition}:logs:*:*:log-group:/aws/lambda/{app_name}-*-jwt_authorizer"
    return {"Version": "2012-10-17", "Statement": [_statement("Logs", LOG_ACTIONS, [group, group + ":*"])]}


def owner_only_conflicts(config: dict) -> list:
    """Messages for machines one stage marks ownerOnly and another exposes without it (any qualifier)."""
    from chalicelib.config import parse_state_machines

    owner_only, exposed = {}, {}
    for stage in sorted(config.get("stages", {})):
        raw = stage_environment(config, stage).get("STATE_MACHINES")
        if not raw:
            continue
        for machine in parse_state_machines(raw):
            target = owner_only if machine.owner_only else exposed
            target.setdefault(machine.unqualified_arn, set()).add(stage)
    return [
        f"{arn} is ownerOnly in stage {sorted(owner_only[arn])[0]!r} but exposed without ownerOnly in stage "
        f"{sorted(exposed[arn])[0]!r}: that stage would read and plant executions of its owners. Mark it ownerOnly "
        "there too, or stop exposing it there."
        for arn in sorted(set(owner_only) & set(exposed))
    ]


def render(policy: dict) -> str:
    """The policy as stable text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(policy, indent=2, sort_keys=True) + "\n"


def policy_path(stage: str, chalice_dir: Path = CHALICE_DIR, config: dict | None = None) -> Path:
    """The policy file a stage names (its iam_policy_file) in .chalice/config.json."""
    return chalice_dir / named_policy_file(load_config(chalice_dir) if config is None else config, stage)


class PolicyFileNotNamed(KeyError):
    """A stage's function does not name a policy file of its own."""

    # A KeyError, as an unknown stage is, so main() reports both the same way; shown without quotes.
    def __str__(self) -> str:
        return self.args[0]


# The functions whose policy files this tool writes (Chalice calls the API's function api_handler).
API_FUNCTION = "api_handler"
WEBHOOKS_FUNCTION = "webhooks"


def _named_file(config: dict, stage: str, function: str) -> str | None:
    # Chalice lets a function's settings override its stage's. A function other than the API's
    # must name its own file: inheriting the stage's, it would run with the API's grants.
    stage_settings = config["stages"][stage]
    own = stage_settings.get("lambda_functions", {}).get(function, {})
    if function == API_FUNCTION:
        settings = {**stage_settings, **own}
    else:
        settings = {"autogen_policy": stage_settings.get("autogen_policy"), **own}
    return settings.get("iam_policy_file") if settings.get("autogen_policy") is False else None


def _functions_with_written_policies(config: dict):
    for stage, settings in sorted(config.get("stages", {}).items()):
        yield stage, API_FUNCTION
        for function in (WEBHOOKS_FUNCTION, *APPROVAL_FUNCTIONS):
            if function in settings.get("lambda_functions", {}):
                yield stage, function


def named_policy_file(config: dict, stage: str, function: str = API_FUNCTION) -> str:
    """The policy file one of a stage's functions names (its iam_policy_file), checked to be its own."""
    stage_environment(config, stage)  # an unknown stage is reported with the list of stages
    api = function == API_FUNCTION
    where = f"stage {stage!r}" + ("" if api else f", function {function!r},")
    own = f"policy-{stage}.json" if api else f"policy-{stage}-{function}.json"
    name = _named_file(config, stage, function)
    if not name:
        under = f'"stages" > "{stage}"' + ("" if api else f' > "lambda_functions" > "{function}"')
        raise PolicyFileNotNamed(f".chalice/config.json, {where} names no policy file of its own: set "
                                 f'"autogen_policy": false and "iam_policy_file": "{own}" under {under}, then run '
                                 "`make policy`.")
    # Each file holds one function's allow-list and log group: a second user of the file (a
    # copied stage that kept the name) would deploy with the first one's grants.
    sharing = [f"stage {other!r}" + ("" if other_function == API_FUNCTION else f" ({other_function})")
               for other, other_function in _functions_with_written_policies(config)
               if (other, other_function) != (stage, function) and _named_file(config, other, other_function) == name]
    if sharing:
        raise PolicyFileNotNamed(f".chalice/config.json, {where} names {name}, which {', '.join(sharing)} also "
                                 f'names: give each its own file (e.g. "iam_policy_file": "{own}"), then run '
                                 "`make policy`.")
    return name


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
    try:
        conflicts = owner_only_conflicts(config)
    except GatewayMisconfigured as err:
        conflicts = [str(err)]
    if conflicts:
        for conflict in conflicts:
            print(conflict, file=sys.stderr)
        return 2
    files = [("jwt_authorizer (every jwt stage)", chalice_dir / JWT_AUTHORIZER_POLICY_FILE,
              render(jwt_authorizer_policy(config.get("app_name", "sfn-gateway"))))]
    from tools.stage_checks import stage_problems

    for stage in stages:
        known = stage in config.get("stages", {})
        problems = stage_problems(config, stage, stage_environment(config, stage)) if known else []
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 2
        try:
            files.append((stage, policy_path(stage, chalice_dir, config), render(policy_for_stage(config, stage))))
            webhook_policy = webhook_policy_for_stage(config, stage)
            if webhook_policy:
                files.append((stage, webhook_policy_path(stage, chalice_dir, config), render(webhook_policy)))
            for function, approvals_policy in approvals_function_policies(config, stage).items():
                files.append((stage, approvals_policy_path(stage, function, chalice_dir, config),
                              render(approvals_policy)))
        except (KeyError, GatewayMisconfigured) as err:
            print(f"{stage}: {err}", file=sys.stderr)
            return 2
    for stage, path, text in files:
        current = path.read_text() if path.exists() else None
        if text == current:
            print(f"{path.relative_to(chalice_dir.parent)}: up to date")
        elif args.check:
            stale.append(path)
            problem = "missing" if current is None else "does not match"
            print(f"{path.relative_to(chalice_dir.parent)}: {problem} for stage {stage} (its state machines, task "
                  "routes and log group); run `make policy`", file=sys.stderr)
        else:
            path.write_text(text)
            print(f"{path.relative_to(chalice_dir.parent)}: written")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
