"""sfn-gateway: a REST API over allow-listed AWS Step Functions operations. Routes only."""
from chalice import Chalice, IAMAuthorizer, Response

from chalicelib import factory
from chalicelib.middleware import handle_request
from chalicelib.service import execution_location
from chalicelib.validation import (
    HISTORY_QUERY,
    LIST_EXECUTIONS_QUERY,
    NO_QUERY,
    START_EXECUTION_BODY,
    STOP_EXECUTION_BODY,
    choose_execution_name,
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
    body = parse_body(request.raw_body, START_EXECUTION_BODY)
    name = choose_execution_name(body.get("name"), request.headers.get("idempotency-key"))
    started = factory.get_gateway().start_execution(body["stateMachine"], body.get("input", {}), name)
    return Response(started, status_code=201, headers={"Location": execution_location(started["executionArn"])})


@app.route("/executions", methods=["GET"], authorizer=iam)
def list_executions():
    query = parse_query(app.current_request.query_params, LIST_EXECUTIONS_QUERY)
    return factory.get_gateway().list_executions(
        query["stateMachine"], query.get("status"), query.get("limit"), query.get("nextToken")
    )


@app.route("/executions/{executionArn}", authorizer=iam)
def describe_execution(executionArn):
    parse_query(app.current_request.query_params, NO_QUERY)
    return factory.get_gateway().describe_execution(executionArn)


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
