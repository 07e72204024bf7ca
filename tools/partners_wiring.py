"""What `make package` adds for partners: long integration timeouts, usage plans and API keys.

Chalice has no setting for either, so the generated template is edited after `chalice package`:

* API_TIMEOUT_SECONDS: every Lambda integration's timeoutInMillis, and the API function's timeout
  one second above it (API Gateway, not Lambda, then ends a request that runs too long).
* USAGE_PLANS: per plan an AWS::ApiGateway::UsagePlan (throttle, quota, the stage), an ApiKey
  whose value API Gateway generates (never in the template) and the UsagePlanKey joining them;
  the function's API_KEY_PLANS maps each key's id to its plan for the access log.

This is build-time code (tools/), so it does not ride in every Lambda zip.
"""
import json

from chalicelib.stepfunctions.budget import API_GATEWAY_TIMEOUT_SECONDS, function_timeout
from chalicelib.stepfunctions.settings import api_timeout_seconds
from chalicelib.partners.plans import parse_usage_plans

# The API function's logical id / Terraform name in Chalice's templates.
SAM_API_FUNCTION = "APIHandler"
TERRAFORM_API_FUNCTION = "api_handler"


def _integrations(swagger: dict):
    for methods in swagger.get("paths", {}).values():
        for operation in methods.values():
            integration = operation.get("x-amazon-apigateway-integration") if isinstance(operation, dict) else None
            if integration and integration.get("type") == "aws_proxy":
                yield integration


def _set_timeouts(swagger: dict, seconds: int) -> None:
    for integration in _integrations(swagger):
        integration["timeoutInMillis"] = seconds * 1000


def endpoint_type(config: dict, stage: str) -> str:
    """Chalice's api_gateway_endpoint_type for the stage (stage value over the top-level one)."""
    return config["stages"][stage].get("api_gateway_endpoint_type", config.get("api_gateway_endpoint_type", "EDGE"))


def timeout_problem(config: dict, stage: str, environment: dict) -> str | None:
    """One line when the stage asks for more than 29 s without a Regional API, else None."""
    seconds = api_timeout_seconds(environment)
    if seconds > API_GATEWAY_TIMEOUT_SECONDS and endpoint_type(config, stage) != "REGIONAL":
        return (f'{stage}: API_TIMEOUT_SECONDS={seconds} needs "api_gateway_endpoint_type": "REGIONAL" in the stage '
                f"(edge-optimized APIs end every integration at {API_GATEWAY_TIMEOUT_SECONDS} s); see docs/deploy.md.")
    return None


def _logical(prefix: str, plan) -> str:
    return prefix + plan.name[0].upper() + plan.name[1:]


def _sam_plan_resources(plans, name_prefix: str) -> dict:
    resources = {}
    for plan in plans:
        properties = {
            "UsagePlanName": f"{name_prefix}-{plan.name}",
            "Description": plan.description or f"Usage plan of {plan.name}",
            # SAM names the stage resource it creates; "RestAPI.Stage" refers to it.
            "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": {"Ref": "RestAPI.Stage"}}],
        }
        throttle = {key: value for key, value in (("RateLimit", plan.rate_limit), ("BurstLimit", plan.burst_limit))
                    if value is not None}
        if throttle:
            properties["Throttle"] = throttle
        if plan.quota_limit is not None:
            properties["Quota"] = {"Limit": plan.quota_limit, "Period": plan.quota_period, "Offset": plan.quota_offset}
        resources[_logical("UsagePlan", plan)] = {"Type": "AWS::ApiGateway::UsagePlan", "Properties": properties}
        # No Value: API Gateway generates the key, so it is never in the template or its history.
        resources[_logical("ApiKey", plan)] = {"Type": "AWS::ApiGateway::ApiKey", "Properties": {
            "Name": f"{name_prefix}-{plan.name}", "Enabled": True, "Description": f"API key of {plan.name}"}}
        resources[_logical("UsagePlanKey", plan)] = {"Type": "AWS::ApiGateway::UsagePlanKey", "Properties": {
            "KeyId": {"Ref": _logical("ApiKey", plan)}, "KeyType": "API_KEY",
            "UsagePlanId": {"Ref": _logical("UsagePlan", plan)}}}
    return resources


def wire_sam(template: dict, environment: dict, name_prefix: str) -> dict:
    """Chalice's SAM template with the stage's integration timeout and usage plans added."""
    seconds = api_timeout_seconds(environment)
    resources = template["Resources"]
    _set_timeouts(resources["RestAPI"]["Properties"]["DefinitionBody"], seconds)
    function = resources[SAM_API_FUNCTION]["Properties"]
    function["Timeout"] = function_timeout(seconds, function.get("Timeout"))
    plans = parse_usage_plans(environment.get("USAGE_PLANS"))
    if plans:
        resources.update(_sam_plan_resources(plans, name_prefix))
        key_plans = "{" + ", ".join(f'"${{{_logical("ApiKey", plan)}}}": "{plan.name}"' for plan in plans) + "}"
        function.setdefault("Environment", {}).setdefault("Variables", {})["API_KEY_PLANS"] = {"Fn::Sub": key_plans}
        outputs = template.setdefault("Outputs", {})
        for plan in plans:
            outputs[_logical("ApiKeyId", plan)] = {
                "Description": f"Id of {plan.name}'s API key (its value: aws apigateway get-api-key --include-value)",
                "Value": {"Ref": _logical("ApiKey", plan)}}
    return template


def _terraform_plan_resources(plans, name_prefix: str) -> dict:
    usage_plans, keys, plan_keys = {}, {}, {}
    for plan in plans:
        usage_plan = {
            "name": f"{name_prefix}-{plan.name}",
            "description": plan.description or f"Usage plan of {plan.name}",
            "api_stages": [{"api_id": "${aws_api_gateway_rest_api.rest_api.id}",
                            "stage": "${aws_api_gateway_deployment.rest_api.stage_name}"}],
        }
        throttle = {key: value for key, value in (("rate_limit", plan.rate_limit), ("burst_limit", plan.burst_limit))
                    if value is not None}
        if throttle:
            usage_plan["throttle_settings"] = throttle
        if plan.quota_limit is not None:
            usage_plan["quota_settings"] = {"limit": plan.quota_limit, "period": plan.quota_period,
                                            "offset": plan.quota_offset}
        usage_plans[plan.name] = usage_plan
        keys[plan.name] = {"name": f"{name_prefix}-{plan.name}", "enabled": True}
        plan_keys[plan.name] = {"key_id": f"${{aws_api_gateway_api_key.{plan.name}.id}}", "key_type": "API_KEY",
                                "usage_plan_id": f"${{aws_api_gateway_usage_plan.{plan.name}.id}}"}
    return {"aws_api_gateway_usage_plan": usage_plans, "aws_api_gateway_api_key": keys,
            "aws_api_gateway_usage_plan_key": plan_keys}


def wire_terraform(template: dict, environment: dict, name_prefix: str) -> dict:
    """Chalice's Terraform template with the stage's integration timeout and usage plans added."""
    seconds = api_timeout_seconds(environment)
    swagger = json.loads(template["locals"]["chalice_api_swagger"])
    _set_timeouts(swagger, seconds)
    template["locals"]["chalice_api_swagger"] = json.dumps(swagger)
    function = template["resource"]["aws_lambda_function"][TERRAFORM_API_FUNCTION]
    function["timeout"] = function_timeout(seconds, function.get("timeout"))
    plans = parse_usage_plans(environment.get("USAGE_PLANS"))
    if plans:
        template["resource"].update(_terraform_plan_resources(plans, name_prefix))
        mapping = ", ".join(f'(aws_api_gateway_api_key.{plan.name}.id) = "{plan.name}"' for plan in plans)
        variables = function.setdefault("environment", {}).setdefault("variables", {})
        variables["API_KEY_PLANS"] = "${jsonencode({" + mapping + "})}"
        template.setdefault("output", {}).update({
            f"api_key_id_{plan.name}": {"value": f"${{aws_api_gateway_api_key.{plan.name}.id}}"} for plan in plans})
    return template
