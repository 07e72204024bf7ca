"""The one place that creates AWS clients (lazily, once, with the stage's timeouts) and the gateway over them."""
import functools

from chalicelib.config import get_config


@functools.cache
def get_sfn_client():
    """The cached Step Functions client for this stage."""
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
            read_timeout=config.read_timeout,
            retries={"mode": "standard", "total_max_attempts": config.max_attempts},
            # boto3 sends StartSyncExecution to "sync-<host>", which a custom
            # endpoint such as the local engine does not answer.
            inject_host_prefix=config.endpoint_url is None,
        ),
    )


def get_gateway():
    """The Step Functions gateway for this request, over the cached client."""
    from chalicelib.service import StepFunctionsGateway

    return StepFunctionsGateway(get_sfn_client(), get_config().registry)
