"""Turn boto3 responses into JSON-ready dicts: ISO 8601 timestamps, JSON payloads parsed."""
import datetime
import json

# Step Functions returns these as JSON text; clients get them as JSON values.
_JSON_TEXT_FIELDS = frozenset({"input", "output", "parameters", "definition"})


def _parse_json_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def to_json_ready(value, key: str | None = None):
    """Copy a boto3 response value, making it serialisable by Chalice."""
    if isinstance(value, dict):
        return {k: to_json_ready(v, k) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [to_json_ready(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if key in _JSON_TEXT_FIELDS and isinstance(value, str):
        return _parse_json_text(value)
    return value
