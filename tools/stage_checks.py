"""Checks of a stage's settings that `make policy` and `make package` run before writing anything.

Each problem is one line naming the stage; the gateway's own parser runs first, so a stage the
gateway would refuse at its first request is refused here too.
"""
import json

from chalicelib.config import config_from_environ
from chalicelib.errors import GatewayMisconfigured


def _schema_problems(stage: str, environment: dict) -> list:
    # The draft-07 meta-schema, checked by jsonschema (a dev dependency): stricter than compiling
    # the schema, which only fails on what the compiler cannot turn into code.
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    problems = []
    machines = json.loads(environment.get("STATE_MACHINES") or "{}")
    for name, entry in machines.items():
        if isinstance(entry, dict) and "inputSchema" in entry:
            try:
                Draft7Validator.check_schema(entry["inputSchema"])
            except SchemaError as err:
                where = "/".join(str(part) for part in err.absolute_path) or "(top)"
                problems.append(f'{stage}: STATE_MACHINES["{name}"].inputSchema is not a valid draft-07 schema '
                                f"at {where}: {' '.join(err.message.split())}")
    return problems


def stage_problems(config: dict, stage: str, environment: dict) -> list:
    """Every problem with one stage (its environment variables given), one line each ([] when it may be packaged)."""
    from chalicelib.partners.plans import parse_usage_plans
    from tools.partners_wiring import timeout_problem

    try:
        config_from_environ(environment)
        parse_usage_plans(environment.get("USAGE_PLANS"))
    except GatewayMisconfigured as err:
        return [f"{stage}: {' '.join(str(err).split())}"]
    timeout = timeout_problem(config, stage, environment)
    return _schema_problems(stage, environment) + ([timeout] if timeout else [])
