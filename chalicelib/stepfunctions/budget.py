"""One time budget per request: every Step Functions call, retry and poll must end inside it."""
import contextvars
import time

# API Gateway ends every REST integration after 29 s, whatever the Lambda timeout says.
API_GATEWAY_TIMEOUT_SECONDS = 29
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


def start(lambda_context, clock=time.monotonic) -> Budget:
    """Open this request's budget from the Lambda context's remaining time."""
    seconds = API_GATEWAY_TIMEOUT_SECONDS
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
