"""sfn-gateway: a REST API over allow-listed AWS Step Functions operations. Routes only."""
import os

from chalice import Chalice

from chalicelib import factory
from chalicelib.approvals import triggers as approval_triggers
from chalicelib.approvals import wiring as approvals
from chalicelib.auth import identity
from chalicelib.http import inputs, responses
from chalicelib.http.cors import STAGE_CORS
from chalicelib.http.middleware import handle_request
from chalicelib.partners.plans import api_keys_required
from chalicelib.validation import (
    ANSWER_APPROVAL_BODY,
    LIST_APPROVALS_QUERY,
    HISTORY_QUERY,
    LIST_EXECUTIONS_QUERY,
    NO_BODY,
    STOP_EXECUTION_BODY,
    TASK_FAILURE_BODY,
    TASK_HEARTBEAT_BODY,
    TASK_SUCCESS_BODY,
    client_token,
)
from chalicelib.webhooks import rule as webhook_rule

app = Chalice(app_name="sfn-gateway")
app.debug = False
# IAM (SigV4) unless the stage sets AUTH_MODE=cognito or jwt; read once, here, at import.
authorizer = identity.route_authorizer(app)
# With USAGE_PLANS, API Gateway also wants each partner's x-api-key (all routes but /health); read at import too.
partner_keys = api_keys_required(os.environ)
if STAGE_CORS is not None:
    # Every route then gets an OPTIONS preflight answered by API Gateway itself (MOCK).
    app.api.cors = STAGE_CORS

app.register_middleware(handle_request, "http")


@app.route("/health")
def health():
    return {"status": "ok"}


@app.route("/state-machines", authorizer=authorizer, api_key_required=partner_keys)
def list_state_machines():
    inputs.query(app.current_request)
    return factory.get_gateway().list_state_machines()


@app.route("/state-machines/{name}", authorizer=authorizer, api_key_required=partner_keys)
def describe_state_machine(name):
    inputs.query(app.current_request)
    return factory.get_gateway().describe_state_machine(name)


@app.route("/executions", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def start_execution():
    request = app.current_request
    wait = inputs.query(request, inputs.stage_wait_query()).get("wait")
    gateway = factory.get_gateway()
    started = gateway.start_execution(**inputs.start_arguments(request))
    if wait is None:
        return responses.started(request, started)
    return responses.waited(request, *gateway.wait_for_execution(started["executionArn"], wait, known=started))


@app.route("/executions", methods=["GET"], authorizer=authorizer, api_key_required=partner_keys)
def list_executions():
    query = inputs.query(app.current_request, LIST_EXECUTIONS_QUERY)
    return factory.get_gateway().list_executions(
        query["stateMachine"], query.get("status"), query.get("limit"), query.get("nextToken")
    )


@app.route("/executions/{executionArn}", authorizer=authorizer, api_key_required=partner_keys)
def describe_execution(executionArn):
    request = app.current_request
    wait = inputs.query(request, inputs.stage_wait_query()).get("wait")
    gateway = factory.get_gateway()
    if wait is None:
        return gateway.describe_execution(executionArn)
    return responses.waited(request, *gateway.wait_for_execution(executionArn, wait))


@app.route("/executions/{executionArn}/stop", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def stop_execution(executionArn):
    body = inputs.body(app.current_request, STOP_EXECUTION_BODY)
    return factory.get_gateway().stop_execution(executionArn, body.get("error"), body.get("cause"))


@app.route("/executions/{executionArn}/history", authorizer=authorizer, api_key_required=partner_keys)
def get_execution_history(executionArn):
    query = inputs.query(app.current_request, HISTORY_QUERY)
    return factory.get_gateway().get_execution_history(
        executionArn, query.get("limit"), query.get("nextToken"), query.get("reverse", False)
    )


@app.route("/executions/{executionArn}/redrive", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def redrive_execution(executionArn):
    request = app.current_request
    inputs.body(request, NO_BODY)
    return factory.get_gateway().redrive_execution(executionArn, client_token(request.headers.get("idempotency-key")))


@app.route("/sync-executions", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def start_sync_execution():
    request = app.current_request
    inputs.query(request)
    return factory.get_gateway().start_sync_execution(**inputs.start_arguments(request))


@app.route("/tasks/success", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def send_task_success():
    body = inputs.body(app.current_request, TASK_SUCCESS_BODY)
    return factory.get_gateway().send_task_success(body["taskToken"], body.get("output", {}))


@app.route("/tasks/failure", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def send_task_failure():
    body = inputs.body(app.current_request, TASK_FAILURE_BODY)
    return factory.get_gateway().send_task_failure(body["taskToken"], body.get("error"), body.get("cause"))


@app.route("/tasks/heartbeat", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def send_task_heartbeat():
    body = inputs.body(app.current_request, TASK_HEARTBEAT_BODY)
    return factory.get_gateway().send_task_heartbeat(body["taskToken"])


@app.route("/approvals", authorizer=authorizer, api_key_required=partner_keys)
def list_approvals():
    query = inputs.query(app.current_request, LIST_APPROVALS_QUERY)
    return approvals.inbox().list_pending(query.get("limit"), query.get("nextToken"))


@app.route("/approvals/{approvalId}", authorizer=authorizer, api_key_required=partner_keys)
def show_approval(approvalId):
    inputs.query(app.current_request)
    return approvals.inbox().show(approvalId)


@app.route("/approvals/{approvalId}/approve", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def approve_approval(approvalId):
    body = inputs.body(app.current_request, ANSWER_APPROVAL_BODY)
    return approvals.inbox().answer(approvalId, "approved", body.get("comment"), body.get("data"))


@app.route("/approvals/{approvalId}/reject", methods=["POST"], authorizer=authorizer, api_key_required=partner_keys)
def reject_approval(approvalId):
    body = inputs.body(app.current_request, ANSWER_APPROVAL_BODY)
    return approvals.inbox().answer(approvalId, "rejected", body.get("comment"), body.get("data"))


# The inbox page, where people sign in (jwt and cognito stages with APPROVALS=on): a public shell
# without data, like /health; its script asks the routes above with the person's token. Read at
# import, like the approvals triggers below: Chalice builds the API with or without these routes.
if approval_triggers.inbox_page_served(os.environ):

    @app.route("/inbox")
    def inbox_page():
        from chalicelib.approvals import page  # here, not at the top: API requests never load the page

        return page.page(os.environ)

    @app.route("/inbox/{file_name}")
    def inbox_file(file_name):
        from chalicelib.approvals import page

        return page.static_file(file_name)


# Chalice builds the event rule with the app, and `chalice package/deploy/local` load the
# stage's variables before importing app.py: the one import-time read for webhooks.
_WEBHOOK_PATTERN = webhook_rule.event_pattern(os.environ)
if _WEBHOOK_PATTERN:

    @app.on_cw_event(_WEBHOOK_PATTERN, name="webhooks")
    def deliver_webhooks(event):
        from chalicelib.webhooks import delivery as webhooks  # here, not at the top: the API function's cold start skips http.client

        webhooks.deliver_status_change(event.to_dict(), event.context)


# The approvals queue and the closer's rule are part of the app Chalice builds: the one
# import-time read for approvals (chalicelib/approvals/triggers.py, light like chalicelib/webhooks/rule.py).
_APPROVALS_QUEUE = approval_triggers.queue_name(os.environ)
if _APPROVALS_QUEUE:

    @app.on_sqs_message(queue=_APPROVALS_QUEUE, batch_size=10, name="approvals_consumer")
    def consume_approvals(event):
        return approvals.consume(event.to_dict())

    @app.on_cw_event(approval_triggers.closer_pattern(os.environ), name="approvals_closer")
    def close_approvals(event):
        return approvals.close(event.to_dict())
