"""Dev-only Chalice HTTP server that enforces SigV4 on IAMAuthorizer routes like API Gateway.

Differences from ``chalice local``, and why:

* ``IAMAuthorizer`` routes are verified (chalice local only warns and lets them through);
  more than one access key can sign, each standing for its own IAM user or role.
* A built-in (JWT) authorizer's refusal answers 401 as API Gateway does, not a dropped connection.
* A signed request for a path with no route answers 403 "Missing Authentication Token", as API
  Gateway does, not chalice local's complaint about the Authorization header.
* ``TCP_NODELAY``: the handler writes headers and body separately, so Nagle plus the
  client's delayed ACK stalls every keep-alive request by ~40 ms.
* A listen backlog of 1024 instead of socketserver's 5, which resets connections
  when 16+ clients connect at once.
* No auto-reload (its worker restarts leave orphan processes behind).
* API Gateway's integration timeout (the stage's API_TIMEOUT_SECONDS): a handler still running
  then is answered 504 {"message": "Endpoint request timed out"}; the function's own timeout
  sits one second above it, as `make package` sets it.
* With USAGE_PLANS, routes that require an API key check x-api-key and each plan's throttle
  (local/partners.py), after the signature, as API Gateway does.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import threading
from typing import Any, Dict, Optional, Tuple

from chalice.app import Chalice, IAMAuthorizer
from chalice.config import Config
from chalice.deploy.validate import validate_routes
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    InvalidAuthorizerError,
    LambdaContext,
    LocalChalice,
    LocalGateway,
    LocalGatewayAuthorizer,
    LocalGatewayException,
    NotAuthorizedError,
    RouteMatcher,
    ThreadedHTTPServer,
)

from chalicelib.stepfunctions.budget import function_timeout
from chalicelib.stepfunctions.settings import api_timeout_seconds
from local.sigv4 import ALGORITHM, SignatureError, SigV4Verifier


class _IntegrationTimeout(LocalGatewayException):
    CODE = 504


class _SigV4Authorizer(LocalGatewayAuthorizer):
    """Verify SigV4 for IAMAuthorizer routes; defer every other authorizer to chalice."""

    def __init__(self, app: Chalice, verifier: SigV4Verifier, partner_gate=None) -> None:
        super().__init__(app)
        self._verifier = verifier
        self._partner_gate = partner_gate

    def authorize(self, raw_path: str, lambda_event: Dict[str, Any],
                  lambda_context: LambdaContext) -> Tuple[Dict[str, Any], LambdaContext]:
        # API Gateway puts a request id in every event; chalice local leaves it out.
        lambda_event["requestContext"].setdefault("requestId", lambda_context.aws_request_id)
        lambda_event, lambda_context = self._verify(raw_path, lambda_event, lambda_context)
        route = self._route_for_event(lambda_event)
        if self._partner_gate is not None and route is not None and route.api_key_required:
            from local.partners import local_key_id

            key, plan = self._partner_gate.admit(lambda_event["headers"], lambda_context.aws_request_id)
            lambda_event["requestContext"]["identity"].update(apiKey=key, apiKeyId=local_key_id(plan))
        return lambda_event, lambda_context

    def _verify(self, raw_path: str, lambda_event: Dict[str, Any],
                lambda_context: LambdaContext) -> Tuple[Dict[str, Any], LambdaContext]:
        route = self._route_for_event(lambda_event)
        if route is None or not isinstance(route.authorizer, IAMAuthorizer):
            return self._builtin_authorize(raw_path, lambda_event, lambda_context)
        context = lambda_event["requestContext"]
        try:
            identity = self._verifier.verify(
                context["httpMethod"], raw_path, lambda_event["headers"].items(),
                _raw_body(lambda_event))
        except SignatureError as err:
            raise ForbiddenError(
                {"x-amzn-RequestId": lambda_context.aws_request_id,
                 "x-amzn-ErrorType": err.error_type},
                json.dumps({"message": err.message}).encode()) from err
        context["identity"].update(identity.as_request_context())
        context["identity"]["userAgent"] = lambda_event["headers"].get("user-agent")
        return lambda_event, lambda_context


    def _builtin_authorize(self, raw_path: str, lambda_event: Dict[str, Any],
                           lambda_context: LambdaContext) -> Tuple[Dict[str, Any], LambdaContext]:
        # A built-in authorizer refuses a token by failing with the message "Unauthorized",
        # which API Gateway answers with 401; any other failure of the authorizer is a 500.
        # chalice local would let either escape as a broken connection.
        try:
            return super().authorize(raw_path, lambda_event, lambda_context)
        except LocalGatewayException:
            raise
        except Exception as err:
            headers = {"x-amzn-RequestId": lambda_context.aws_request_id}
            if str(err) == "Unauthorized":
                raise NotAuthorizedError({**headers, "x-amzn-ErrorType": "UnauthorizedException"},
                                         b'{"message":"Unauthorized"}') from err
            raise InvalidAuthorizerError({**headers, "x-amzn-ErrorType": "AuthorizerConfigurationException"},
                                         b'{"message":null}') from err


class _SigV4Gateway(LocalGateway):
    """chalice's LocalGateway with the SigV4-aware authorizer swapped in."""

    def __init__(self, app: Chalice, config: Config, verifier: SigV4Verifier, partner_gate=None) -> None:
        super().__init__(app, config)
        self._authorizer = _SigV4Authorizer(app, verifier, partner_gate)
        self._routes = RouteMatcher(list(app.routes))
        self._integration_timeout = api_timeout_seconds(os.environ)

    def _generate_lambda_context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self._config.function_name, memory_size=self._config.lambda_memory_size,
            max_runtime_ms=function_timeout(self._integration_timeout, self._config.lambda_timeout) * 1000,
        )

    def handle_request(self, method: str, path: str, headers: Dict[str, str], body: Optional[bytes]) -> Dict[str, Any]:
        # API Gateway answers a signed request for a path it has no route for (a typo, or a URL
        # without the stage) with 403 "Missing Authentication Token"; chalice local would answer
        # with its complaint about the Authorization header, which reads like a signing mistake.
        authorization = headers.get("authorization") or headers.get("Authorization") or ""
        if authorization.startswith(ALGORITHM + " ") and not self._has_route(path):
            raise ForbiddenError(
                {"x-amzn-RequestId": self._generate_lambda_context().aws_request_id,
                 "x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                b'{"message":"Missing Authentication Token"}')
        outcome: Dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["response"] = super(_SigV4Gateway, self).handle_request(method, path, headers, body)
            except BaseException as err:  # handed to the request's thread, which raises it
                outcome["error"] = err

        # The handler runs on in its thread after the timeout, as a Lambda function would.
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(self._integration_timeout)
        if worker.is_alive():
            raise _IntegrationTimeout({"x-amzn-ErrorType": "InternalServerErrorException"},
                                      b'{"message": "Endpoint request timed out"}')
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]

    def _has_route(self, path: str) -> bool:
        try:
            self._routes.match_route(path)
        except ValueError:
            return False
        return True


class _RequestHandler(ChaliceRequestHandler):
    """One keep-alive connection, served by a gateway shared across connections."""

    # StreamRequestHandler.setup() sets TCP_NODELAY when this is true.
    disable_nagle_algorithm = True

    def __init__(self, request: Any, client_address: Tuple[str, int],
                 server: Any, gateway: LocalGateway) -> None:
        # ChaliceRequestHandler.__init__ would build a new LocalGateway (and
        # re-sort every route) per connection; the gateway is stateless, so share it.
        self.local_gateway = gateway
        super(ChaliceRequestHandler, self).__init__(request, client_address, server)


class LocalSigV4Server(ThreadedHTTPServer):
    """Threaded HTTP/1.1 server (daemon threads) with a backlog sized for bursts."""

    request_queue_size = 1024


def make_server(app: Chalice, stage_config: Config, host: str = "127.0.0.1", port: int = 0,
                *, access_key: str = "testing", secret_key: str = "testing",
                region: str = "us-east-1", identities: Optional[dict] = None,
                partner_gate=None) -> LocalSigV4Server:
    """Return a ready-to-serve threaded HTTP server for a Chalice app with SigV4 enforced."""
    validate_routes(app.routes)
    _make_current_request_thread_local(app)
    # chalice local copies the stage's environment_variables into os.environ
    # (process-wide, for good) before importing app.py; do the same so routes that
    # read configuration at request time see the stage's values.
    os.environ.update(stage_config.environment_variables)
    verifier = SigV4Verifier(access_key, secret_key, region, identities=identities)
    gateway = _SigV4Gateway(app, stage_config, verifier, partner_gate)
    return LocalSigV4Server((host, port), functools.partial(_RequestHandler, gateway=gateway))


def _make_current_request_thread_local(app: Chalice) -> None:
    # Chalice stores current_request on the app object; with concurrent requests
    # handlers would read each other's request. chalice local fixes this the same
    # way: by swapping the app's class for one whose current_request is thread-local.
    if not isinstance(app, LocalChalice):
        app.__class__ = type(f"Local{type(app).__name__}", (LocalChalice, type(app)), {})


def _raw_body(lambda_event: Dict[str, Any]) -> Optional[bytes]:
    body = lambda_event.get("body")
    if lambda_event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body
