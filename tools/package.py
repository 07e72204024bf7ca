"""Package a stage for deployment: `chalice package`, plus what Chalice's templates leave out.

* On stages that set CORS_ALLOW_ORIGIN, API Gateway's own errors (403 unsigned, 429
  throttled, 504 integration timeout, ...) must carry CORS headers too, or browsers hide
  them behind an opaque network error. Chalice has no setting for gateway responses, so
  they are added here: merged into the SAM template, or as a Terraform file beside Chalice's.
* On stages with "xray": true, `chalice deploy` traces the API Gateway stage but
  `chalice package` only traces the function; the SAM template gets TracingEnabled here.
* On stages with APPROVALS=on, the approvals queue (+ dead-letter queue), the DynamoDB table
  (on demand, encrypted, TTL) and the grants of the API, consumer and closer functions on them
  name resources Chalice does not create: approvals_template() adds them (docs/approvals.md).
* The gateway's own modules go into deployment.zip without their comments and module docstrings (the Lambda never
  reads them; each file keeps its lines, so tracebacks keep their line numbers). Every module
  is checked to parse to the same syntax tree as its source, or packaging fails. This keeps
  the bundle the size it had before chalicelib/ was split into packages (many small files
  compress worse than a few large ones). The inbox page's files ship only to stages that serve
  the page, and every entry is deflated at level 9.
* API_TIMEOUT_SECONDS and USAGE_PLANS: integration timeouts, the function's timeout, usage
  plans and API keys are written into the generated template (tools/partners_wiring.py).
* On stages with WEBHOOKS, failed webhook deliveries need a Lambda on-failure destination,
  which Chalice cannot declare: an SQS queue, the function's EventInvokeConfig and the role's
  sqs:SendMessage come from tools/templates/webhook-failures.{sam,tf}.json (docs/webhooks.md).

    python -m tools.package --stage prod out/prod            # SAM: sam.json + deployment.zip
    python -m tools.package --stage prod --pkg-format terraform out/prod-tf
"""
import argparse
import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tokenize
import zipfile
from pathlib import Path

from chalicelib.config import config_from_environ
from chalicelib.http.cors import cors_config
from tools.policy import PROJECT_DIR, TASK_TOKEN_SID, load_config, owner_only_conflicts, stage_environment

FORMATS = ("cloudformation", "terraform")
GATEWAY_RESPONSE_TYPES = ("DEFAULT_4XX", "DEFAULT_5XX")
TERRAFORM_EXTRA_FILE = "cors_gateway_responses.tf.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"
WEBHOOK_FAILURES_SAM = TEMPLATES / "webhook-failures.sam.json"
WEBHOOK_FAILURES_TERRAFORM = TEMPLATES / "webhook-failures.tf.json"
WEBHOOK_FAILURES_TERRAFORM_FILE = "webhook_failures.tf.json"
APPROVALS_TERRAFORM_FILE = "approvals.tf.json"
# The runtime requirements' wheels (pure Python), downloaded once; `chalice package` then
# installs them from here with no index, so packaging is offline and repeatable.
WHEELS_DIR = PROJECT_DIR / "build" / "wheels"
REQUIREMENTS = PROJECT_DIR / "requirements.txt"


def _cors_headers(environment: dict) -> dict | None:
    cors = cors_config(environment)
    if cors is None:
        return None
    # API Gateway wants header values as quoted literals.
    return {name: f"'{value}'" for name, value in cors.get_access_control_headers().items()
            if name != "Access-Control-Max-Age"}


def sam_merge_template(environment: dict, xray: bool = False) -> dict | None:
    """The part merged into Chalice's SAM template (None when there is nothing to add)."""
    properties: dict = {}
    headers = _cors_headers(environment)
    if headers is not None:
        properties["GatewayResponses"] = {
            kind: {"ResponseParameters": {"Headers": headers}} for kind in GATEWAY_RESPONSE_TYPES
        }
    if xray:
        properties["TracingEnabled"] = True
    return {"Resources": {"RestAPI": {"Properties": properties}}} if properties else None


def xray_enabled(config: dict, stage: str) -> bool:
    """Chalice's "xray" setting for the stage (stage value over the top-level one)."""
    return bool(config["stages"][stage].get("xray", config.get("xray", False)))


def terraform_extra(environment: dict) -> dict | None:
    """A Terraform file to put beside chalice.tf.json (None when the stage has no CORS)."""
    headers = _cors_headers(environment)
    if headers is None:
        return None
    parameters = {f"gatewayresponse.header.{name}": value for name, value in headers.items()}
    return {"resource": {"aws_api_gateway_gateway_response": {
        kind.lower(): {
            "rest_api_id": "${aws_api_gateway_rest_api.rest_api.id}",
            "response_type": kind,
            "response_parameters": parameters,
        } for kind in GATEWAY_RESPONSE_TYPES
    }}}


def has_webhooks(environment: dict) -> bool:
    """True when the stage subscribes webhooks (its package then has the webhooks function)."""
    return bool(config_from_environ(environment).webhooks)


def with_webhook_failures(merge: dict | None, environment: dict) -> dict | None:
    """The SAM merge template plus the webhooks' failure destination when the stage has WEBHOOKS."""
    if not has_webhooks(environment):
        return merge
    failures = json.loads(WEBHOOK_FAILURES_SAM.read_text())
    merge = dict(merge or {})
    for section, entries in failures.items():
        merge[section] = {**merge.get(section, {}), **entries}
    return merge


# Lambda's SQS trigger: the queue's visibility timeout should be at least 6x the function's
# timeout (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
APPROVALS_VISIBILITY_TIMEOUT = 6 * 29
APPROVALS_MAX_RECEIVE_COUNT = 5
MESSAGE_RETENTION_SECONDS = 14 * 86_400


def _statement(sid: str, actions, resources) -> dict:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}


def _role_policy(name: str, role: str, statements: list) -> dict:
    return {"Type": "AWS::IAM::Policy", "Properties": {
        "PolicyName": name, "Roles": [{"Ref": role}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}}


def approvals_template(environment: dict) -> dict | None:
    """The SAM resources of the approvals inbox on an APPROVALS=on stage (None otherwise)."""
    from chalicelib.approvals.store import table_definition
    from chalicelib.approvals.triggers import queue_name

    queue = queue_name(environment)
    if queue is None:
        return None
    table = table_definition("unused")
    table_arn = {"Fn::GetAtt": ["ApprovalsTable", "Arn"]}
    index_arn = lambda index: {"Fn::Sub": "${ApprovalsTable.Arn}/index/" + index}  # noqa: E731
    queue_arn = {"Fn::GetAtt": ["ApprovalsQueue", "Arn"]}
    dead_letter_arn = {"Fn::GetAtt": ["ApprovalsDeadLetterQueue", "Arn"]}
    table_variable = {"Environment": {"Variables": {"APPROVALS_TABLE": {"Ref": "ApprovalsTable"}}}}
    return {
        "Resources": {
            "ApprovalsDeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": f"{queue}-dlq", "MessageRetentionPeriod": MESSAGE_RETENTION_SECONDS,
                "SqsManagedSseEnabled": True}},
            # Named: the consumer's trigger is declared by name in app.py (APPROVALS_QUEUE).
            "ApprovalsQueue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": queue, "MessageRetentionPeriod": MESSAGE_RETENTION_SECONDS,
                "VisibilityTimeout": APPROVALS_VISIBILITY_TIMEOUT, "SqsManagedSseEnabled": True,
                "RedrivePolicy": {"deadLetterTargetArn": dead_letter_arn,
                                  "maxReceiveCount": APPROVALS_MAX_RECEIVE_COUNT}}},
            "ApprovalsTable": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain",
                               "UpdateReplacePolicy": "Retain", "Properties": {
                "BillingMode": table["BillingMode"],
                "AttributeDefinitions": table["AttributeDefinitions"],
                "KeySchema": table["KeySchema"],
                "GlobalSecondaryIndexes": table["GlobalSecondaryIndexes"],
                "SSESpecification": {"SSEEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}}},
            "ApprovalsApiPolicy": _role_policy("Approvals", "ApiHandlerRole", [
                _statement("ApprovalsTable", ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"),
                           [table_arn, index_arn("*")]),
                _statement(TASK_TOKEN_SID, ("states:SendTaskSuccess",), "*"),
            ]),
            "ApprovalsConsumerPolicy": _role_policy("ApprovalsConsumer", "ApprovalsConsumerRole", [
                # TransactWriteItems is authorised as the PutItem / UpdateItem of each of its items.
                _statement("ApprovalsTable", ("dynamodb:PutItem", "dynamodb:UpdateItem"), table_arn),
                _statement("ApprovalsQueue", ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                              "sqs:GetQueueAttributes", "sqs:ReceiveMessage"), queue_arn),
                _statement("ApprovalsDeadLetterQueue", ("sqs:SendMessage",), dead_letter_arn),
            ]),
            "ApprovalsCloserPolicy": _role_policy("ApprovalsCloser", "ApprovalsCloserRole", [
                _statement("ApprovalsTable", ("dynamodb:UpdateItem",), table_arn),
            ]),
            "APIHandler": {"Properties": table_variable},
            # Lambda checks the role's SQS rights when the trigger is created: grants first.
            "ApprovalsConsumer": {"DependsOn": ["ApprovalsConsumerPolicy", "ApprovalsQueue"], "Properties": {
                "Environment": {"Variables": {"APPROVALS_TABLE": {"Ref": "ApprovalsTable"},
                                              "APPROVALS_DLQ_URL": {"Ref": "ApprovalsDeadLetterQueue"}}}}},
            "ApprovalsCloser": {"DependsOn": ["ApprovalsCloserPolicy"], "Properties": table_variable},
        },
        "Outputs": {
            "ApprovalsQueueUrl": {"Description": "Where workflows send approval requests (docs/approvals.md)",
                                  "Value": {"Ref": "ApprovalsQueue"}},
            "ApprovalsQueueArn": {"Description": "For the workflow role's sqs:SendMessage grant",
                                  "Value": queue_arn},
            "ApprovalsDeadLetterQueueUrl": {"Description": "Approval messages that broke the contract or kept failing",
                                            "Value": {"Ref": "ApprovalsDeadLetterQueue"}},
        },
    }


def _terraform_policy(role: str, statements: list) -> dict:
    document = json.dumps({"Version": "2012-10-17", "Statement": statements})
    return {"name": "Approvals", "role": f"${{aws_iam_role.{role}.id}}", "policy": document}


def approvals_terraform(out: Path, environment: dict) -> None:
    """The approvals resources beside chalice.tf.json (APPROVALS_TERRAFORM_FILE), and their wiring into it."""
    from chalicelib.approvals.store import table_definition
    from chalicelib.approvals.triggers import queue_name

    queue = queue_name(environment)
    if queue is None:
        return
    table = table_definition("unused")
    table_arn, queue_arn = "${aws_dynamodb_table.approvals.arn}", "${aws_sqs_queue.approvals.arn}"
    dead_letter_arn = "${aws_sqs_queue.approvals_dead_letters.arn}"
    indexes = [{
        "name": index["IndexName"],
        "hash_key": index["KeySchema"][0]["AttributeName"],
        "range_key": index["KeySchema"][1]["AttributeName"] if len(index["KeySchema"]) > 1 else None,
        "projection_type": index["Projection"]["ProjectionType"],
        "non_key_attributes": index["Projection"].get("NonKeyAttributes"),
    } for index in table["GlobalSecondaryIndexes"]]
    resources = {
        "aws_sqs_queue": {
            "approvals_dead_letters": {"name": f"{queue}-dlq", "message_retention_seconds": MESSAGE_RETENTION_SECONDS,
                                       "sqs_managed_sse_enabled": True},
            "approvals": {"name": queue, "message_retention_seconds": MESSAGE_RETENTION_SECONDS,
                          "visibility_timeout_seconds": APPROVALS_VISIBILITY_TIMEOUT, "sqs_managed_sse_enabled": True,
                          "redrive_policy": json.dumps({"deadLetterTargetArn": dead_letter_arn,
                                                        "maxReceiveCount": APPROVALS_MAX_RECEIVE_COUNT})},
        },
        "aws_dynamodb_table": {"approvals": {
            "name": f"{queue}-table",
            "billing_mode": table["BillingMode"],
            "hash_key": "id",
            "attribute": [{"name": attribute["AttributeName"], "type": attribute["AttributeType"]}
                          for attribute in table["AttributeDefinitions"]],
            "global_secondary_index": [{k: v for k, v in index.items() if v is not None} for index in indexes],
            "server_side_encryption": {"enabled": True},
            "ttl": {"attribute_name": "ttl", "enabled": True},
            "point_in_time_recovery": {"enabled": True},
        }},
        "aws_iam_role_policy": {
            "approvals_api": _terraform_policy("api_handler_role", [
                _statement("ApprovalsTable", ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"),
                           [table_arn, table_arn + "/index/*"]),
                _statement(TASK_TOKEN_SID, ("states:SendTaskSuccess",), "*")]),
            "approvals_consumer": _terraform_policy("approvals_consumer_role", [
                _statement("ApprovalsTable", ("dynamodb:PutItem", "dynamodb:UpdateItem"), table_arn),
                _statement("ApprovalsQueue", ("sqs:ChangeMessageVisibility", "sqs:DeleteMessage",
                                              "sqs:GetQueueAttributes", "sqs:ReceiveMessage"), queue_arn),
                _statement("ApprovalsDeadLetterQueue", ("sqs:SendMessage",), dead_letter_arn)]),
            "approvals_closer": _terraform_policy("approvals_closer_role", [
                _statement("ApprovalsTable", ("dynamodb:UpdateItem",), table_arn)]),
        },
    }
    outputs = {"approvals_queue_url": {"value": "${aws_sqs_queue.approvals.url}"},
               "approvals_queue_arn": {"value": queue_arn},
               "approvals_dead_letter_queue_url": {"value": "${aws_sqs_queue.approvals_dead_letters.url}"}}
    (out / APPROVALS_TERRAFORM_FILE).write_text(json.dumps({"resource": resources, "output": outputs}, indent=2) + "\n")
    # Chalice's own file names the table to its functions, and makes the trigger wait for the grants.
    chalice_file = out / "chalice.tf.json"
    template = json.loads(chalice_file.read_text())
    functions = template["resource"]["aws_lambda_function"]
    for name in ("api_handler", "approvals_consumer", "approvals_closer"):
        functions[name]["environment"]["variables"]["APPROVALS_TABLE"] = "${aws_dynamodb_table.approvals.name}"
    functions["approvals_consumer"]["environment"]["variables"]["APPROVALS_DLQ_URL"] = (
        "${aws_sqs_queue.approvals_dead_letters.url}")
    for mapping in template["resource"]["aws_lambda_event_source_mapping"].values():
        mapping["depends_on"] = ["aws_sqs_queue.approvals", "aws_iam_role_policy.approvals_consumer"]
    chalice_file.write_text(json.dumps(template, indent=2) + "\n")


def _merged(merge: dict | None, extra: dict | None) -> dict | None:
    if extra is None:
        return merge
    merge = dict(merge or {})
    for section, entries in extra.items():
        merge[section] = {**merge.get(section, {}), **entries}
    return merge


def _module_docstring(tree: ast.Module) -> ast.Expr | None:
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def _without_module_docstring(tree: ast.Module) -> ast.Module:
    if _module_docstring(tree) is not None:
        tree.body = tree.body[1:]
    return tree


def _same_code(shipped: str, source: str) -> bool:
    """Both parse to the same syntax tree (module docstring aside) and have the same lines."""
    return (ast.dump(_without_module_docstring(ast.parse(shipped)))
            == ast.dump(_without_module_docstring(ast.parse(source)))
            and shipped.count("\n") == source.count("\n"))


def without_comments(source: str) -> str:
    """The Python source without its comments and module docstring, every line kept (same line numbers, same code)."""
    lines = source.splitlines(keepends=True)
    comments = [token for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT]
    for token in reversed(comments):
        (row, start), (_, end) = token.start, token.end
        line = lines[row - 1]
        body = line.rstrip("\r\n")
        lines[row - 1] = (body[:start] + body[end:]).rstrip() + line[len(body):]
    # The module docstring explains the design to readers; nothing reads a module's __doc__ at run time.
    docstring = _module_docstring(ast.parse(source))
    if docstring is not None:
        ending = lines[docstring.end_lineno - 1][len(lines[docstring.end_lineno - 1].rstrip("\r\n")):]
        lines[docstring.lineno - 1] = '""' + ending
        for row in range(docstring.lineno, docstring.end_lineno):
            lines[row] = lines[row][len(lines[row].rstrip("\r\n")):]
    stripped = "".join(lines)
    if not _same_code(stripped, source):
        raise ValueError("removing comments changed the code")  # never expected: comments are not code
    return stripped


# The inbox page's files (chalicelib/approvals/page.py serves them only on stages that serve the page).
INBOX_STATIC_PREFIX = "chalicelib/approvals/static/"


def slim_bundle(bundle: Path, environment: dict) -> None:
    """Rewrite deployment.zip as the stage runs it: the gateway's own modules without their comments,
    the inbox page's files only on stages that serve the page, every entry at the best compression."""
    from chalicelib.approvals.triggers import inbox_page_served

    keep_page = inbox_page_served(environment)
    with zipfile.ZipFile(bundle) as original:
        entries = [(info, original.read(info)) for info in original.infolist()]
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as rewritten:
        for info, data in entries:
            if info.filename.startswith(INBOX_STATIC_PREFIX) and not keep_page:
                continue
            if info.filename == "app.py" or (info.filename.startswith("chalicelib/") and info.filename.endswith(".py")):
                data = without_comments(data.decode("utf-8")).encode("utf-8")
            rewritten.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def _pinned_requirements() -> list:
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def offline_wheels(env: dict) -> None:
    """Point chalice's pip at build/wheels (filled on first use) instead of the package index."""
    pins = _pinned_requirements()
    if not pins:
        return
    present = {path.name.split("-")[0].lower().replace("_", "-") + "==" + path.name.split("-")[1]
               for path in WHEELS_DIR.glob("*.whl")}
    if not all(pin.lower().replace("_", "-") in present for pin in pins):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary=:all:", "--dest", str(WHEELS_DIR), *pins], check=True, timeout=300)
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELS_DIR))


def _wire_partners(out: Path, pkg_format: str, environment: dict, name_prefix: str) -> None:
    # Integration timeouts and usage plans live in the generated template itself (tools/partners_wiring.py).
    from tools.partners_wiring import wire_sam, wire_terraform

    path = out / ("sam.json" if pkg_format == "cloudformation" else "chalice.tf.json")
    wire = wire_sam if pkg_format == "cloudformation" else wire_terraform
    path.write_text(json.dumps(wire(json.loads(path.read_text()), environment, name_prefix), indent=2) + "\n")


def _chalice() -> str:
    beside = Path(sys.executable).parent / "chalice"
    return str(beside) if beside.exists() else "chalice"


def package(stage: str, pkg_format: str, out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run chalice package for the stage into out/ and add the stage's gateway responses."""
    config = load_config()
    environment = stage_environment(config, stage)
    env = dict(os.environ if env is None else env)
    # botocore needs a region to build the template; nothing is called.
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION") or "us-east-1")
    # Chalice zips chalicelib/ as it is on disk, __pycache__ included: bytecode left by a test
    # run doubles deployment.zip (and may be stale). Neither keep it nor let chalice write it.
    for bytecode in (PROJECT_DIR / "chalicelib").rglob("__pycache__"):
        shutil.rmtree(bytecode, ignore_errors=True)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    offline_wheels(env)
    command = [_chalice(), "package", "--pkg-format", pkg_format, "--stage", stage]
    with tempfile.TemporaryDirectory() as scratch:
        merge = sam_merge_template(environment, xray_enabled(config, stage)) if pkg_format == "cloudformation" else None
        if pkg_format == "cloudformation":
            merge = _merged(with_webhook_failures(merge, environment), approvals_template(environment))
        if merge is not None:
            merge_file = Path(scratch) / "merge.json"
            merge_file.write_text(json.dumps(merge))
            command += ["--merge-template", str(merge_file)]
        result = subprocess.run(command + [str(out)], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                                timeout=300)
    if result.returncode == 0:
        slim_bundle(Path(out) / "deployment.zip", environment)
        _wire_partners(Path(out), pkg_format, environment, f"{config.get('app_name', 'sfn-gateway')}-{stage}")
    extra = terraform_extra(environment) if pkg_format == "terraform" else None
    if result.returncode == 0 and extra is not None:
        (out / TERRAFORM_EXTRA_FILE).write_text(json.dumps(extra, indent=2) + "\n")
    if result.returncode == 0 and pkg_format == "terraform" and has_webhooks(environment):
        shutil.copyfile(WEBHOOK_FAILURES_TERRAFORM, Path(out) / WEBHOOK_FAILURES_TERRAFORM_FILE)
    if result.returncode == 0 and pkg_format == "terraform":
        approvals_terraform(Path(out), environment)
    return result


# Settings whose URL points this process's AWS calls (or its token keys) somewhere else.
_ENDPOINT_SETTINGS = ("SFN_ENDPOINT_URL", "JWT_ISSUER", "JWT_JWKS_URL")


def _is_loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def deploy_refusals(config: dict, stage: str) -> list:
    """Why this stage must not be deployed (empty when it may be): local-only settings, cross-stage ownerOnly gaps."""
    environment = stage_environment(config, stage)
    refusals = []
    if stage == "local":
        refusals.append("stage 'local' is the local stack's (make run); it is not deployable.")
    if (environment.get("WEBHOOKS_ALLOW_LOCAL") or "off").strip().lower() == "on":
        refusals.append(f"stage {stage!r} sets WEBHOOKS_ALLOW_LOCAL=on, which turns the webhook SSRF guard off: "
                        "local stacks only.")
    endpoint_settings = [key for key in environment if key in _ENDPOINT_SETTINGS or key.startswith("AWS_ENDPOINT_URL")]
    for key in sorted(endpoint_settings):
        if _is_loopback_url(environment[key] or ""):
            refusals.append(f"stage {stage!r} sets {key}={environment[key]}, a loopback address: local stacks only.")
    refusals.extend(owner_only_conflicts(config))
    return refusals


def main(argv=None) -> int:
    """Package one stage; exit with chalice's status."""
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--pkg-format", choices=FORMATS, default="cloudformation")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    from tools.stage_checks import stage_problems

    config = load_config()
    try:
        problems = stage_problems(config, args.stage, stage_environment(config, args.stage))
    except KeyError as err:
        # One line that lists the stages, not a traceback.
        problems = [f"make package: {err.args[0]}"]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    refusals = deploy_refusals(config, args.stage)
    if refusals:
        for refusal in refusals:
            print(f"make package refused: {refusal}", file=sys.stderr)
        return 2
    result = package(args.stage, args.pkg_format, args.out)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
