"""GetExecutionHistory's paging: maxResults, reverseOrder and nextToken, as AWS pages it."""
import base64
import binascii
import json

from moto.core.exceptions import AWSError, InvalidToken
from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

# AWS GetExecutionHistory limits: maxResults 0 means the default page of 100; at most 1000.
HISTORY_PAGE_DEFAULT = 100
HISTORY_PAGE_MAX = 1000


def patch_execution_history_pagination() -> None:
    # StepFunctionResponse.get_execution_history ignores maxResults, reverseOrder and
    # nextToken: it returns every event, oldest first.
    original = StepFunctionResponse.get_execution_history

    def get_execution_history(self):
        events = original(self).result["events"]
        execution_arn = self._get_param("executionArn")
        reverse = bool(self._get_param("reverseOrder", False))
        max_results = self._get_int_param("maxResults") or HISTORY_PAGE_DEFAULT
        if max_results > HISTORY_PAGE_MAX:
            raise AWSError(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed "
                "to satisfy constraint: Member must have value less than or equal to "
                f"{HISTORY_PAGE_MAX}",
                "ValidationException",
            )
        if reverse:
            events = events[::-1]
        token = self._get_param("nextToken")
        if token:
            last_id = _decode_history_token(token, execution_arn, reverse)
            events = [e for e in events if (e["id"] < last_id if reverse else e["id"] > last_id)]
        page = events[:max_results]
        response = {"events": page}
        if len(events) > max_results:
            response["nextToken"] = _encode_history_token(execution_arn, reverse, page[-1]["id"])
        return ActionResult(response)

    StepFunctionResponse.get_execution_history = get_execution_history


def _encode_history_token(execution_arn: str, reverse: bool, last_id: int) -> str:
    payload = json.dumps(
        {"executionArn": execution_arn, "reverseOrder": reverse, "lastId": last_id}
    )
    return base64.urlsafe_b64encode(payload.encode()).decode()


def _decode_history_token(token: str, execution_arn: str, reverse: bool) -> int:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
        valid = payload["executionArn"] == execution_arn and payload["reverseOrder"] == reverse
        last_id = int(payload["lastId"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise InvalidToken(f"'{token}'")
    return last_id
