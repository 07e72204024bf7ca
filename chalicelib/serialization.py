"""JSON in and out without changing numbers, and boto3 responses made JSON-ready."""
import datetime
import json
import math
from decimal import Decimal

# Step Functions returns these as JSON text; clients get them as JSON values.
_JSON_TEXT_FIELDS = frozenset({"input", "output", "parameters", "definition"})
# The C string encoder without ASCII escaping: non-ASCII text stays 1 character, not 6.
_encode_string = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring


class JsonValueError(ValueError):
    """A value that JSON cannot represent (NaN, Infinity, an unknown type)."""


class JsonNumber(Decimal):
    """A decimal number that remembers how it was written, so it is sent on exactly so."""

    def __new__(cls, text: str):
        number = super().__new__(cls, text)
        number.text = text
        return number


def _reject_constant(name):
    # Python's json module accepts NaN and Infinity; JSON (RFC 8259) and Step Functions do not.
    raise JsonValueError(f"{name} is not a JSON value")


# Built once: json.loads and json.dumps build a new decoder or encoder on every call given options.
_EXACT_DECODER = json.JSONDecoder(parse_float=JsonNumber, parse_constant=_reject_constant)


def loads(text: str, object_pairs_hook=None):
    """Parse JSON keeping every number exact: decimals as JsonNumber, integers as int."""
    # json.loads would turn 12345678901234567.89 into 1.2345678901234568e+16 and
    # 1e400 into inf; JsonNumber keeps the text the sender wrote.
    if object_pairs_hook is None and isinstance(text, str) and not text.startswith("\ufeff"):
        return _EXACT_DECODER.decode(text)
    # Bytes (their encoding detected) and a leading BOM (refused) as json.loads treats them.
    return json.loads(text, parse_float=JsonNumber, parse_constant=_reject_constant, object_pairs_hook=object_pairs_hook)


class _NeedsExactWriter(Exception):
    """The value holds a number json.dumps cannot write exactly."""


def _refuse(value):
    raise _NeedsExactWriter


_COMPACT_ENCODERS = {
    sort_keys: json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys, allow_nan=False,
                                default=_refuse)
    for sort_keys in (False, True)
}


def dumps(value, sort_keys: bool = False) -> str:
    """Compact JSON text for a value from loads() or a boto3 response; never NaN or Infinity."""
    # The C encoder writes most documents (no decimals in them) several times faster.
    try:
        return _COMPACT_ENCODERS[bool(sort_keys)].encode(value)
    except (_NeedsExactWriter, ValueError):
        parts: list = []
        _write(value, sort_keys, parts)
        return "".join(parts)


def _write(value, sort_keys: bool, parts: list) -> None:
    if isinstance(value, str):
        parts.append(_encode_string(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, JsonNumber):
        parts.append(value.text)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise JsonValueError(f"{value} is not valid JSON")
        parts.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise JsonValueError(f"{value} is not valid JSON")
        parts.append(float.__repr__(value))
    elif isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        parts.append("{")
        for index, (key, item) in enumerate(items):
            if index:
                parts.append(",")
            parts.append(_encode_string(str(key)))
            parts.append(":")
            _write(item, sort_keys, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _write(item, sort_keys, parts)
        parts.append("]")
    elif isinstance(value, datetime.datetime):
        parts.append(_encode_string(value.isoformat()))
    else:
        raise JsonValueError(f"Object of type {type(value).__name__} is not JSON serialisable")


def _parse_json_text(text):
    try:
        return loads(text)
    except ValueError:
        return text


def to_json_ready(value, key: str | None = None):
    """Copy a boto3 response value, making it serialisable with dumps()."""
    if isinstance(value, dict):
        ready = {}
        for k, v in value.items():
            # Strings and numbers, most of a response, are kept as they are without a call per key;
            # dates (every response has some) are written here too.
            if k == "ResponseMetadata":
                continue
            kind = type(v)
            if (kind is str and k not in _JSON_TEXT_FIELDS) or kind is int or kind is bool or v is None:
                ready[k] = v
            elif kind is datetime.datetime:
                ready[k] = v.isoformat()
            else:
                ready[k] = to_json_ready(v, k)
        return ready
    if isinstance(value, list):
        return [to_json_ready(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if key in _JSON_TEXT_FIELDS and isinstance(value, str):
        return _parse_json_text(value)
    return value
