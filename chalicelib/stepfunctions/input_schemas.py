"""Input schemas: a state machine's JSON Schema (draft-07), checked before any Step Functions call.

fastjsonschema compiles a schema into a plain Python function once; with fast_fail=False that
function collects every violation instead of stopping at the first. It is imported here only,
and this module only when a stage's STATE_MACHINES has an "inputSchema".
"""
import re
from decimal import Decimal

import fastjsonschema

from chalicelib.errors import InputSchemaViolation

# Draft-07 is the newest draft fastjsonschema implements; earlier "$schema" values would
# silently switch its rules, so only draft-07 (or none, meaning draft-07) is accepted.
DRAFT_07 = ("http://json-schema.org/draft-07/schema#", "http://json-schema.org/draft-07/schema")
MAX_REPORTED_VIOLATIONS = 20
_INDEX = re.compile(r"\[(\d+)\]")


class InvalidInputSchema(ValueError):
    """The schema cannot be compiled; the message says why."""


def _remote_references(schema) -> list:
    found = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            found.append(ref)
        for value in schema.values():
            found += _remote_references(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _remote_references(value)
    return found


def _escape(token) -> str:
    # RFC 6901: "~" is written "~0" and "/" is written "~1".
    return str(token).replace("~", "~0").replace("/", "~1")


def _resolve(value, name: str, pointer: str):
    """The RFC 6901 pointer of fastjsonschema's dotted name ("data.a.b[2]"), read against the instance."""
    # The dotted name is ambiguous for keys holding "." or "[": follow the keys the instance really has.
    if not name:
        return pointer
    index = _INDEX.match(name)
    if index and isinstance(value, list) and int(index.group(1)) < len(value):
        return _resolve(value[int(index.group(1))], name[index.end():], f"{pointer}/{index.group(1)}")
    if name.startswith(".") and isinstance(value, dict):
        rest = name[1:]
        for key in sorted((k for k in value if isinstance(k, str) and rest.startswith(k)), key=len, reverse=True):
            tail = rest[len(key):]
            if not tail or tail[0] in ".[":
                found = _resolve(value[key], tail, f"{pointer}/{_escape(key)}")
                if found is not None:
                    return found
    return None


def _plain_numbers(value):
    # The gateway parses decimals as exact Decimal subclasses; fastjsonschema's multipleOf
    # divides by repr(), which a Decimal does not survive. Schemas compare floats, as JSON parsers give.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _has_decimal(value) -> bool:
    if isinstance(value, Decimal):
        return True
    if isinstance(value, dict):
        return any(_has_decimal(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_decimal(item) for item in value)
    return False


def _violations(err, instance) -> list:
    """One {"pointer", "message"} per violation; a missing or extra property is its own violation."""
    pointer = _resolve(instance, (err.name or "data")[len("data"):], "")
    if pointer is None:
        pointer = "".join("/" + _escape(part) for part in err.path[1:])
    definition = err.definition if isinstance(err.definition, dict) else {}
    value = err.value
    if err.rule == "required" and isinstance(value, dict):
        return [{"pointer": f"{pointer}/{_escape(key)}", "message": "is required"}
                for key in definition.get("required", []) if key not in value]
    if err.rule == "additionalProperties" and isinstance(value, dict) and definition.get("additionalProperties") is False:
        known = set(definition.get("properties", {}))
        patterns = [re.compile(p) for p in definition.get("patternProperties", {})]
        return [{"pointer": f"{pointer}/{_escape(key)}", "message": "is not allowed"}
                for key in value if key not in known and not any(p.search(key) for p in patterns)]
    # fastjsonschema starts each message with the dotted name, which the pointer replaces.
    message = err.message[len(err.name):].strip() if err.name and err.message.startswith(err.name) else err.message
    return [{"pointer": pointer, "message": message}]


class InputSchema:
    """A compiled input schema: `check(value)` raises InputSchemaViolation listing what is wrong."""

    def __init__(self, schema):
        if not isinstance(schema, dict):
            raise InvalidInputSchema("must be a JSON Schema object (draft-07)")
        if schema.get("$schema", DRAFT_07[0]) not in DRAFT_07:
            raise InvalidInputSchema(f'"$schema" must be draft-07 ({DRAFT_07[0]}) or left out, got {schema["$schema"]!r}')
        remote = _remote_references(schema)
        if remote:
            # fastjsonschema would download them at compile time, i.e. during a cold start.
            raise InvalidInputSchema(f"$ref must point inside the schema (\"#/...\"), got {remote[0]!r}")
        self.schema = schema
        try:
            # use_default=False: defaults in a schema must not rewrite the caller's input.
            self._validate = fastjsonschema.compile(schema, use_default=False, fast_fail=False)
        except Exception as err:  # the compiler raises many kinds (re.error, TypeError, ...) for a bad schema
            raise InvalidInputSchema(f"is not a valid draft-07 schema ({type(err).__name__}: {err})") from None

    def violations(self, value) -> list:
        """Every violation as {"pointer", "message"}; [] when the value is valid."""
        instance = _plain_numbers(value) if _has_decimal(value) else value
        try:
            self._validate(instance)
            return []
        except fastjsonschema.JsonSchemaValuesException as err:
            found = [violation for error in err.errors for violation in _violations(error, instance)]
        except fastjsonschema.JsonSchemaValueException as err:
            found = _violations(err, instance)
        except (ArithmeticError, TypeError, ValueError):
            # e.g. a number beyond float range (1e400) against multipleOf.
            found = [{"pointer": "", "message": "holds a number the schema's checks cannot evaluate"}]
        return found

    def check(self, state_machine: str, value) -> None:
        """Raise InputSchemaViolation when the value breaks the schema."""
        found = self.violations(value)
        if not found:
            return
        count = f"{len(found)} violation{'s' if len(found) > 1 else ''}"
        if len(found) > MAX_REPORTED_VIOLATIONS:
            count += f"; the first {MAX_REPORTED_VIOLATIONS} are listed"
        raise InputSchemaViolation(
            f"The input does not match the input schema of {state_machine!r} ({count}).",
            found[:MAX_REPORTED_VIOLATIONS],
        )
