"""The one place that creates AWS clients (lazily, once, with the stage's timeouts) and the gateway over them."""
import functools

from chalicelib.config import get_config


def _build_client(read_timeout: float, max_attempts: int):
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
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            # boto3 sends StartSyncExecution to "sync-<host>", which a custom
            # endpoint such as the local engine does not answer.
            inject_host_prefix=config.endpoint_url is None,
        ),
    )


@functools.cache
def get_sfn_client():
    """The cached Step Functions client for this stage."""
    config = get_config()
    return _build_client(config.read_timeout, config.max_attempts)


@functools.cache
def get_sync_sfn_client():
    """The cached client for StartSyncExecution: a long read timeout and no retries."""
    # A retried StartSyncExecution would run the Express workflow again: Express
    # executions have no name-based idempotency.
    return _build_client(get_config().sync_read_timeout, 1)


def get_gateway():
    """The Step Functions gateway for this request, over the cached clients."""
    from chalicelib.service import StepFunctionsGateway

    config = get_config()
    return StepFunctionsGateway(
        get_sfn_client(), config.registry, sync_client=get_sync_sfn_client, task_routes=config.task_routes
    )


@functools.cache
def get_ssm_client():
    """The cached SSM client that reads webhook secrets (AWS_ENDPOINT_URL_SSM points it elsewhere)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ssm",
        region_name=get_config().region,
        config=Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "total_max_attempts": 3}),
    )
