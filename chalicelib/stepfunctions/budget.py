"""One time budget per request: every Step Functions call, retry and poll must end inside it."""
import contextvars
import time

# API Gateway ends every REST integration after 29 s by default, whatever the Lambda timeout
# says; Regional APIs may raise it up to 300 s (a quota increase past 29 s): API_TIMEOUT_SECONDS.
API_GATEWAY_TIMEOUT_SECONDS = 29
MAX_API_TIMEOUT_SECONDS = 300
# ?wait= may poll for the stage's timeout minus this: room for the start, the last describe
# (connect 2 s + a short read), a cold start and API Gateway's own hop.
WAIT_MARGIN_SECONDS = 4
# Left for what happens outside the handler's own calls: API Gateway's hop, a cold
# start's init (counted by API Gateway, not by the Lambda context) and writing the answer.
SAFETY_MARGIN_SECONDS = 1.5

_current: contextvars.ContextVar = contextvars.ContextVar("request_budget", default=None)


class Budget:
    """A deadline on a monotonic clock."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self._clock = clock
        self.deadline = clock() + seconds

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - self._clock()


def function_timeout(api_timeout_seconds: int, configured: int | None) -> int:
    """The API function's timeout: above the integration timeout, and never below the stage's own setting."""
    return max(configured or 0, api_timeout_seconds + 1)


def max_wait_seconds(api_timeout_seconds: int) -> int:
    """The longest ?wait= a stage with this integration timeout accepts."""
    return max(0, api_timeout_seconds - WAIT_MARGIN_SECONDS)


def start(lambda_context, clock=time.monotonic, api_timeout_seconds: float = API_GATEWAY_TIMEOUT_SECONDS) -> Budget:
    """Open this request's budget from the stage's integration timeout and the Lambda context's remaining time."""
    seconds = api_timeout_seconds
    remaining_ms = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        seconds = min(seconds, remaining_ms() / 1000)
    budget = Budget(seconds - SAFETY_MARGIN_SECONDS, clock)
    _current.set(budget)
    return budget


def current() -> Budget | None:
    """This request's budget, or None outside a request (no deadline)."""
    return _current.get()


def clear() -> None:
    """Close the budget when the request ends, so a reused thread starts clean."""
    _current.set(None)
