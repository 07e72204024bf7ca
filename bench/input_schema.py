"""Benchmark: checking a 10 KiB execution input against its state machine's input schema (target <= 0.5 ms).

The input is parsed as the gateway parses request bodies (decimals kept exact), then checked by
chalicelib.stepfunctions.input_schemas as POST /executions checks it: a valid input (the common case) and one
with a violation in every order line (the error listing is the slower path).
"""
import json
import statistics
import time

from chalicelib.stepfunctions.input_schemas import InputSchema
from chalicelib.serialization import loads

TARGET_MS = 0.5
RUNS = 7
CALLS = 2000
# An order-shaped schema: the kind of input a partner sends.
SCHEMA = {
    "type": "object",
    "required": ["orderId", "customer", "lines"],
    "additionalProperties": False,
    "properties": {
        "orderId": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{6}$"},
        "customer": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {"id": {"type": "string", "minLength": 1}, "email": {"type": "string", "maxLength": 254},
                           "tier": {"enum": ["bronze", "silver", "gold"]}},
        },
        "lines": {
            "type": "array", "minItems": 1, "maxItems": 500,
            "items": {
                "type": "object", "required": ["sku", "quantity", "price"], "additionalProperties": False,
                "properties": {"sku": {"type": "string", "maxLength": 32},
                               "quantity": {"type": "integer", "minimum": 1},
                               "price": {"type": "number", "minimum": 0, "multipleOf": 0.01},
                               "note": {"type": "string", "maxLength": 200}},
            },
        },
        "notes": {"type": "string"},
    },
}


def _input_text(size: int = 10 * 1024, bad: bool = False) -> str:
    lines = []
    document = {"orderId": "AB-123456", "customer": {"id": "c-42", "email": "ada@example.com", "tier": "gold"},
                "lines": lines}
    text = ""
    while len(text.encode()) < size:
        index = len(lines)
        lines.append({"sku": f"SKU-{index:05d}", "quantity": 0 if bad else index % 7 + 1,
                      "price": f"{index % 90 + 9}.99", "note": "gift wrap"})
        # Prices as JSON numbers with decimals, as clients send them.
        text = json.dumps(document).replace('"price": "', '"price": ').replace('", "note"', ', "note"')
    return text


def _per_call_ms(schema: InputSchema, value, check) -> float:
    timings = []
    for _ in range(RUNS):
        began = time.perf_counter()
        for _ in range(CALLS):
            check(schema, value)
        timings.append((time.perf_counter() - began) / CALLS * 1000)
    return statistics.median(timings)


def main() -> None:
    began = time.perf_counter()
    schema = InputSchema(SCHEMA)
    compile_ms = (time.perf_counter() - began) * 1000
    text = _input_text()
    valid = loads(text)
    assert schema.violations(valid) == [], schema.violations(valid)
    invalid = loads(_input_text(bad=True))
    errors = len(schema.violations(invalid))
    valid_ms = _per_call_ms(schema, valid, lambda s, v: s.violations(v))
    invalid_ms = _per_call_ms(schema, invalid, lambda s, v: s.violations(v))
    verdict = "ok" if valid_ms <= TARGET_MS else "OVER TARGET"
    print(f"input schema check of a {len(text.encode()) / 1024:.1f} KiB valid input ({len(valid['lines'])} order lines): "
          f"{valid_ms:.3f} ms (median of {RUNS} x {CALLS} calls; target <= {TARGET_MS} ms: {verdict})")
    print(f"   same input with {errors} violations, all listed: {invalid_ms:.3f} ms; compiling the schema: {compile_ms:.1f} ms")


if __name__ == "__main__":
    main()
