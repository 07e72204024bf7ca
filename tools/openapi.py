"""`make openapi STAGE=dev`: the stage's own OpenAPI 3.1 document, for typed clients.

openapi.yaml (OpenAPI 3.0.3) describes the API of every stage. A stage's document adds what only
the stage knows: the request bodies of POST /executions and POST /sync-executions become a oneOf
over its state machines, discriminated by `stateMachine`, each with its input schema; `wait`
gets the stage's maximum; with USAGE_PLANS every route but /health also needs the x-api-key.

    python -m tools.openapi --stage dev            # writes out/openapi-dev.json
"""
import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

from chalicelib.config import config_from_environ
from chalicelib.partners.plans import parse_usage_plans
from tools.policy import PROJECT_DIR, load_config, stage_environment

SPEC = PROJECT_DIR / "openapi.yaml"
OPENAPI_VERSION = "3.1.0"
API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "x-api-key",
                  "description": "The partner's API key (USAGE_PLANS); API Gateway answers 403 without it."}
# The start routes, the schemas their bodies are built from, and which machines each accepts.
START_ROUTES = {
    "/executions": ("Start", lambda machine: not machine.is_express),
    "/sync-executions": ("SyncStart", lambda machine: machine.is_express),
}


def _to_3_1(node):
    """OpenAPI 3.0's `nullable: true` becomes a "null" type, as 3.1 (JSON Schema 2020-12) writes it."""
    if isinstance(node, dict):
        node = {key: _to_3_1(value) for key, value in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_to_3_1(item) for item in node]
    return node


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").replace(".", "-").split("-") if part)


def _rebase_references(node, base: str):
    # A draft-07 schema's "#/definitions/x" means "inside this schema"; once it sits in
    # components, the same place is base + "/definitions/x".
    if isinstance(node, dict):
        return {key: (base + value[1:] if key == "$ref" and isinstance(value, str) and value.startswith("#")
                      else _rebase_references(value, base)) for key, value in node.items()}
    if isinstance(node, list):
        return [_rebase_references(item, base) for item in node]
    return node


def _input_component(schemas: dict, machine) -> dict:
    """A $ref to the machine's input schema, placed in components (AnyJson when it has none)."""
    if machine.input_schema is None:
        return {"$ref": "#/components/schemas/AnyJson"}
    name = f"{_camel(machine.name)}Input"
    schema = {key: value for key, value in copy.deepcopy(machine.input_schema.schema).items() if key != "$schema"}
    schemas[name] = _rebase_references(schema, f"#/components/schemas/{name}")
    return {"$ref": f"#/components/schemas/{name}"}


def _start_body(schemas: dict, prefix: str, machines: list) -> dict:
    variants, mapping = [], {}
    for machine in machines:
        name = f"{prefix}{_camel(machine.name)}Request"
        schemas[name] = {
            "type": "object",
            "required": ["stateMachine"],
            "additionalProperties": False,
            "properties": {
                "stateMachine": {"type": "string", "enum": [machine.name, machine.arn],
                                 "description": "This state machine's short name (or its allow-listed ARN)."},
                "input": {**_input_component(schemas, machine),
                          "description": "The execution input, checked against the state machine's input schema."},
                "name": {"$ref": "#/components/schemas/ExecutionName"},
            },
        }
        variants.append({"$ref": f"#/components/schemas/{name}"})
        mapping[machine.name] = f"#/components/schemas/{name}"
    return {"oneOf": variants, "discriminator": {"propertyName": "stateMachine", "mapping": mapping}}


def stage_document(config: dict, stage: str, spec: dict | None = None) -> dict:
    """The stage's OpenAPI 3.1 document."""
    environment = stage_environment(config, stage)
    gateway_config = config_from_environ(environment)
    document = _to_3_1(spec if spec is not None else yaml.safe_load(SPEC.read_text()))
    document["openapi"] = OPENAPI_VERSION
    document["info"]["title"] = f"{document['info']['title']} ({stage})"
    components = document["components"]
    schemas = components["schemas"]
    wait = components["parameters"]["Wait"]
    wait["schema"]["maximum"] = gateway_config.max_wait_seconds
    wait["description"] = (f"Seconds to wait for a STANDARD execution to end: at most {gateway_config.max_wait_seconds} "
                           f"on this stage (API_TIMEOUT_SECONDS {gateway_config.api_timeout_seconds} minus 4).")
    machines = list(gateway_config.registry)
    for path, (prefix, accepts) in START_ROUTES.items():
        chosen = [machine for machine in machines if accepts(machine)]
        if chosen:
            body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            body["schema"] = _start_body(schemas, prefix, chosen)
    if parse_usage_plans(environment.get("USAGE_PLANS")):
        components["securitySchemes"]["api_key"] = API_KEY_SCHEME
        # A plan's throttle or quota is API Gateway's own 429: {"message": "Too Many Requests" | "Limit Exceeded"}.
        throttled = components["responses"]["TooManyRequests"]["content"]["application/json"]
        throttled["schema"] = {"oneOf": [{"$ref": "#/components/schemas/ApiGatewayError"}, throttled["schema"]]}
        for operations in document["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and operation.get("security"):
                    # Both at once: one requirement object holding both schemes.
                    operation["security"] = [{**requirement, "api_key": []} for requirement in operation["security"]]
    return document


def main(argv=None) -> int:
    """Write out/openapi-<stage>.json (or --out)."""
    parser = argparse.ArgumentParser(prog="python -m tools.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from chalicelib.errors import GatewayMisconfigured

    try:
        document = stage_document(load_config(), args.stage)
    except (KeyError, GatewayMisconfigured) as err:
        print(f"{args.stage}: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    out = args.out or PROJECT_DIR / "out" / f"openapi-{args.stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
