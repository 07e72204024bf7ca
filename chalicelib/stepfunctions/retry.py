"""botocore's standard retry policy, asked one failure at a time so the gateway can keep to its budget."""
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryEventAdapter,
    StandardRetryConditions,
    ThrottlingErrorDetector,
)

# The gateway counts attempts itself; botocore's checker only judges the failure.
_CONDITIONS = StandardRetryConditions(max_attempts=1_000)
_BACKOFF = ExponentialBackoff(throttling_detector=ThrottlingErrorDetector(RetryEventAdapter()))


def _context(client, operation: str, err: Exception, attempt: int) -> RetryContext:
    operation_model = None
    meta = getattr(client, "meta", None)
    if meta is not None:
        operation_model = meta.service_model.operation_model(meta.method_to_api_mapping[operation])
    if isinstance(err, ClientError):
        metadata = err.response.get("ResponseMetadata", {})
        http_response = AWSResponse(None, metadata.get("HTTPStatusCode", 400), metadata.get("HTTPHeaders", {}), None)
        return RetryContext(attempt, operation_model, parsed_response=err.response, http_response=http_response)
    return RetryContext(attempt, operation_model, caught_exception=err)


def retry_delay(client, operation: str, err: Exception, attempt: int) -> float | None:
    """Seconds to wait before trying again after this failure, or None if it is not retryable."""
    context = _context(client, operation, err, attempt)
    if not _CONDITIONS.is_retryable(context):
        return None
    return _BACKOFF.delay_amount(context)
