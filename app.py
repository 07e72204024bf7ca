"""sfn-gateway: a REST API over allow-listed AWS Step Functions operations. Routes only."""
import os

from chalice import Chalice, IAMAuthorizer

from chalicelib import factory, responses, webhooks
from chalicelib.middleware import handle_request
from chalicelib.validation import (
    HISTORY_QUERY,
    LIST_EXECUTIONS_QUERY,
    NO_BODY,
    NO_QUERY,
    START_EXECUTION_BODY,
    STOP_EXECUTION_BODY,
    TASK_FAILURE_BODY,
    TASK_HEARTBEAT_BODY,
    TASK_SUCCESS_BODY,
    WAIT_QUERY,
    choose_execution_name,
    client_token,
    parse_body,
    parse_query,
)

app = Chalice(app_name="sfn-gateway")
app.debug = False
iam = IAMAuthorizer()

app.register_middleware(handle_request, "http")


@app.route("/health")
def health():
    return {"status": "ok"}


@app.route("/state-machines", authorizer=iam)
def list_state_machines():
    parse_query(app.current_request.query_params, NO_QUERY)
    return factory.get_gateway().list_state_machines()


@app.route("/state-machines/{name}", authorizer=iam)
def describe_state_machine(name):
    parse_query(app.current_request.query_params, NO_QUERY)
    return factory.get_gateway().describe_state_machine(name)


@app.route("/executions", methods=["POST"], authorizer=iam)
def start_execution():
    request = app.current_request
    wait = parse_query(request.query_params, WAIT_QUERY).get("wait")
    body = parse_body(request.raw_body, START_EXECUTION_BODY)
    name = choose_execution_name(body.get("name"), request.headers.get("idempotency-key"))
    gateway = factory.get_gateway()
    started = gateway.start_execution(body["stateMachine"], body.get("input", {}), name, responses.caller_context(request))
    if wait is None:
        return responses.started(started)
    return responses.waited(*gateway.wait_for_execution(started["executionArn"], wait))


@app.route("/executions", methods=["GET"], authorizer=iam)
def list_executions():
    query = parse_query(app.current_request.query_params, LIST_EXECUTIONS_QUERY)
    return factory.get_gateway().list_executions(
        query["stateMachine"], query.get("status"), query.get("limit"), query.get("nextToken")
    )


@app.route("/executions/{executionArn}", authorizer=iam)
def describe_execution(executionArn):
    wait = parse_query(app.current_request.query_params, WAIT_QUERY).get("wait")
    if wait is None:
        return factory.get_gateway().describe_execution(executionArn)
    return responses.waited(*factory.get_gateway().wait_for_execution(executionArn, wait))


@app.route("/executions/{executionArn}/stop", methods=["POST"], authorizer=iam)
def stop_execution(executionArn):
    body = parse_body(app.current_request.raw_body, STOP_EXECUTION_BODY)
    return factory.get_gateway().stop_execution(executionArn, body.get("error"), body.get("cause"))


@app.route("/executions/{executionArn}/history", authorizer=iam)
def get_execution_history(executionArn):
    query = parse_query(app.current_request.query_params, HISTORY_QUERY)
    return factory.get_gateway().get_execution_history(
        executionArn, query.get("limit"), query.get("nextToken"), query.get("reverse", False)
    )


@app.route("/executions/{executionArn}/redrive", methods=["POST"], authorizer=iam)
def redrive_execution(executionArn):
    request = app.current_request
    parse_body(request.raw_body, NO_BODY)
    return factory.get_gateway().redrive_execution(executionArn, client_token(request.headers.get("idempotency-key")))


@app.route("/sync-executions", methods=["POST"], authorizer=iam)
def start_sync_execution():
    request = app.current_request
    body = parse_body(request.raw_body, START_EXECUTION_BODY)
    name = choose_execution_name(body.get("name"), request.headers.get("idempotency-key"))
    return factory.get_gateway().start_sync_execution(
        body["stateMachine"], body.get("input", {}), name, responses.caller_context(request)
    )


@app.route("/tasks/success", methods=["POST"], authorizer=iam)
def send_task_success():
    body = parse_body(app.current_request.raw_body, TASK_SUCCESS_BODY)
    return factory.get_gateway().send_task_success(body["taskToken"], body.get("output", {}))


@app.route("/tasks/failure", methods=["POST"], authorizer=iam)
def send_task_failure():
    body = parse_body(app.current_request.raw_body, TASK_FAILURE_BODY)
    return factory.get_gateway().send_task_failure(body["taskToken"], body.get("error"), body.get("cause"))


@app.route("/tasks/heartbeat", methods=["POST"], authorizer=iam)
def send_task_heartbeat():
    body = parse_body(app.current_request.raw_body, TASK_HEARTBEAT_BODY)
    return factory.get_gateway().send_task_heartbeat(body["taskToken"])


def cors_preflight(**_path_parameters):
    return responses.preflight()


# Browsers send CORS preflights unsigned, so these OPTIONS routes cannot sit behind IAM;
# they answer 404 unless the stage sets CORS_ALLOW_ORIGIN.
for _path in [path for path in app.routes if path != "/health"]:
    app.route(_path, methods=["OPTIONS"], name=f"cors_preflight{_path}")(cors_preflight)


# Chalice builds the event rule with the app, and `chalice package/deploy/local` load the
# stage's variables before importing app.py: the one import-time read for webhooks.
_WEBHOOK_PATTERN = webhooks.event_pattern(os.environ)
if _WEBHOOK_PATTERN:

    @app.on_cw_event(_WEBHOOK_PATTERN, name="webhooks")
    def deliver_webhooks(event):
        webhooks.deliver_status_change(event.to_dict(), event.context)
