"""A user's own workflow dropped into statemachines/ (README, "Your own workflow"): `make run` serves it,
lists it, types it by its file name and subscribes it to the demo webhooks; the suite's assumptions
about the demo workflows still hold with it there."""
import json
import shutil
import time

import pytest

from local.engine import EXPRESS_SUFFIX, workflow_type
from tests.demo_workflows import DEMO_MACHINES, demo_machines_in
from tests.test_end_to_end import PROJECT_DIR, Stack, signed

# What local.run needs from the project; a copy, so the repository's statemachines/ stays as it is.
RUNTIME = ("app.py", "chalicelib", "local", "statemachines", ".chalice")
PASS_THROUGH = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`python -m local.run` from a project copy whose statemachines/ holds two workflows of the user's."""
    project = tmp_path_factory.mktemp("own-workflow")
    for name in RUNTIME:
        source = PROJECT_DIR / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "deployments"))
        else:
            shutil.copy(source, project / name)
    for name in ("my-flow", f"my-flow{EXPRESS_SUFFIX}"):
        (project / "statemachines" / f"{name}.asl.json").write_text(json.dumps(PASS_THROUGH))
    running = Stack(project_dir=project)
    yield running
    running.stop()


def test_the_file_name_picks_the_type():
    assert (workflow_type("orders"), workflow_type(f"orders{EXPRESS_SUFFIX}")) == ("STANDARD", "EXPRESS")
    assert workflow_type("express-orders") == "STANDARD"


def test_an_own_workflow_is_listed_with_the_type_its_name_gives_and_the_demo_workflows_stay(stack):
    response = signed("GET", f"{stack.url}/state-machines")
    assert response.status_code == 200
    listed = response.json()["stateMachines"]
    types = {machine["name"]: machine["type"] for machine in listed}
    assert (types["my-flow"], types[f"my-flow{EXPRESS_SUFFIX}"]) == ("STANDARD", "EXPRESS")
    # What the rest of the suite assumes about the demo workflows holds with more workflows beside them.
    assert demo_machines_in(listed) == DEMO_MACHINES
    assert "my-flow" in stack.banner


def test_an_own_standard_workflow_runs_and_its_end_reaches_the_demo_webhook_receiver(stack):
    response = signed("POST", f"{stack.url}/executions?wait=10", {"stateMachine": "my-flow", "input": {"order": 7}})
    assert response.status_code == 200, response.text
    finished = response.json()
    assert (finished["status"], finished["output"]) == ("SUCCEEDED", {"order": 7})
    # The demo receiver verifies the signature and prints one line per webhook.
    expected = f"signature verified: my-flow SUCCEEDED {finished['executionArn']}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(expected in line for line in stack.output):
        time.sleep(0.05)
    assert [line for line in stack.output if expected in line], "".join(stack.output[-20:])


def test_an_own_express_workflow_runs_synchronously(stack):
    response = signed("POST", f"{stack.url}/sync-executions", {"stateMachine": f"my-flow{EXPRESS_SUFFIX}",
                                                               "input": {"order": 8}})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["output"]) == ("SUCCEEDED", {"order": 8})
