"""Validate real responses against openapi.yaml, for end-to-end tests.

    from tests.openapi_schemas import validate_response
    validate_response("POST", "/executions", 201, response.json_body, response.headers)
"""
import functools
from pathlib import Path

import jsonschema
import yaml

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
# OpenAPI 3.0 schema keywords that JSON Schema does not know (nullable is translated).
_OPENAPI_ONLY = frozenset({"nullable", "example", "xml", "externalDocs", "discriminator", "deprecated"})


@functools.cache
def load_document() -> dict:
    """openapi.yaml, parsed once."""
    return yaml.safe_load(OPENAPI_PATH.read_text())


def to_json_schema(node):
    """Translate an OpenAPI 3.0 schema into JSON Schema (draft 4, which 3.0 is based on)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {}
    for key, value in node.items():
        if key in _OPENAPI_ONLY:
            continue
        if key == "properties":
            # Property names are data, not keywords: keep them all.
            schema[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        else:
            schema[key] = to_json_schema(value)
    if node.get("nullable"):
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def resolve(node: dict) -> dict:
    """Follow a local $ref ("#/components/...") in the document."""
    while "$ref" in node:
        target = load_document()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def response_spec(method: str, path_template: str, status: int) -> dict:
    """The documented response object (refs followed) for one status of one operation."""
    operations = load_document()["paths"].get(path_template)
    assert operations is not None, f"{path_template} is not in openapi.yaml"
    operation = operations.get(method.lower())
    assert operation is not None, f"{method.upper()} {path_template} is not in openapi.yaml"
    response = operation["responses"].get(str(status))
    assert response is not None, (
        f"{method.upper()} {path_template} does not document status {status}; "
        f"documented: {sorted(operation['responses'])}"
    )
    return resolve(response)


def response_schema(method: str, path_template: str, status: int) -> dict:
    """A self-contained JSON Schema for the body of one documented response."""
    content = response_spec(method, path_template, status).get("content", {})
    assert "application/json" in content, f"{method.upper()} {path_template} {status} documents no JSON body"
    components = load_document()["components"]
    return {
        "allOf": [to_json_schema(content["application/json"]["schema"])],
        # $refs such as #/components/schemas/Error resolve against this root.
        "components": {"schemas": to_json_schema(components["schemas"])},
    }


def validate_response(method: str, path_template: str, status: int, body, headers=None) -> None:
    """Raise if the body (and, when given, the headers) break openapi.yaml for this response."""
    schema = response_schema(method, path_template, status)
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    validator.validate(body)
    if headers is not None:
        present = {name.lower() for name in headers}
        declared = response_spec(method, path_template, status).get("headers", {})
        missing = sorted(name for name in declared if name.lower() not in present)
        assert not missing, f"{method.upper()} {path_template} {status} is documented with headers {missing}"
