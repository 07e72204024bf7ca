"""The one place that creates AWS clients (lazily, once per read timeout) and the gateway over them."""
import functools

from chalicelib.auth.identity import current_caller
from chalicelib.config import get_config
from chalicelib.stepfunctions import budget

# 32 random characters from a password generator or `openssl rand -base64 32` hold >= 128 bits.
MIN_STAGE_SECRET_CHARACTERS = 32


@functools.cache
def get_sfn_client(read_timeout: float | None = None):
    """The cached Step Functions client with this read timeout (default: SFN_READ_TIMEOUT)."""
    # Imported here so that importing the app stays cheap for cold starts and tests.
    import boto3
    from botocore.config import Config

    config = get_config()
    return boto3.client(
        "stepfunctions",
        region_name=config.region,
        endpoint_url=config.endpoint_url,
        config=Config(
            connect_timeout=config.connect_timeout,
            read_timeout=read_timeout or config.read_timeout,
            # The gateway retries itself (chalicelib/stepfunctions/retry.py), so that no attempt or
            # back-off outlasts the request's time budget.
            retries={"mode": "standard", "total_max_attempts": 1},
            # boto3 sends StartSyncExecution to "sync-<host>", which a custom
            # endpoint such as the local engine does not answer.
            inject_host_prefix=config.endpoint_url is None,
        ),
    )


def get_gateway():
    """The Step Functions gateway for this request, over the cached clients and within its budget."""
    from chalicelib.stepfunctions.service import StepFunctionsGateway

    config = get_config()
    gateway = StepFunctionsGateway(get_sfn_client, config, budget.current())
    if config.access_rules is None and not config.registry.has_owner_only:
        # Stages without access rules never import (or pay for) the access checks.
        return gateway
    from chalicelib.auth.access import guard

    request_budget = budget.current()
    return guard(gateway, config, current_caller(), get_stage_secret, request_budget.remaining if request_budget else None)


@functools.cache
def get_ssm_client():
    """The cached SSM client that reads the stage secret and webhook secrets (AWS_ENDPOINT_URL_SSM points it elsewhere)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ssm",
        region_name=get_config().region,
        config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3}),
    )


def read_secure_parameter(setting: str, parameter: str) -> dict:
    """An SSM SecureString parameter, decrypted; a mistake naming the setting when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.errors import GatewayMisconfigured

    try:
        return get_ssm_client().get_parameter(Name=parameter, WithDecryption=True)["Parameter"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "Unknown")
        raise GatewayMisconfigured(
            f"Invalid gateway configuration: {setting} {parameter!r} could not be read ({code}); "
            "create it as a SecureString and let the gateway's role read it (make policy)."
        ) from err
    except BotoCoreError as err:
        raise GatewayMisconfigured(
            f"{setting[:1].upper()}{setting[1:]} {parameter!r} could not be read: SSM unreachable "
            f"({type(err).__name__})."
        ) from err


@functools.cache
def get_stage_secret() -> bytes:
    """The stage's secret (the SSM SecureString STAGE_SECRET_PARAMETER names), read once per container."""
    from chalicelib.errors import GatewayMisconfigured

    parameter = get_config().stage_secret_parameter
    if not parameter:
        raise GatewayMisconfigured(
            "Invalid gateway configuration: STAGE_SECRET_PARAMETER is not set. Owner tags (ownerOnly) and "
            "Idempotency-Key names are keyed by a per-stage secret: create an SSM SecureString of at least 32 "
            "random characters and name it in STAGE_SECRET_PARAMETER (see docs/identity.md)."
        )
    found = read_secure_parameter("STAGE_SECRET_PARAMETER", parameter)
    if found.get("Type") != "SecureString" or len(found.get("Value", "")) < MIN_STAGE_SECRET_CHARACTERS:
        raise GatewayMisconfigured(
            f"Invalid gateway configuration: STAGE_SECRET_PARAMETER {parameter!r} must be a SecureString of at "
            f"least {MIN_STAGE_SECRET_CHARACTERS} random characters."
        )
    return found["Value"].encode()


def _aws_client(service: str):
    # AWS_ENDPOINT_URL_<SERVICE> (botocore reads it itself) points these at the local stack.
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=get_config().region,
        config=Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3}),
    )


@functools.cache
def get_dynamodb_client():
    """The cached DynamoDB client of the approvals table."""
    return _aws_client("dynamodb")


@functools.cache
def get_sqs_client():
    """The cached SQS client that writes the approvals dead-letter queue."""
    return _aws_client("sqs")
