"""The demo workflows (statemachines/) the tests use. A user may add workflows of their own, so tests
check that these are served, never that nothing else is."""

DEMO_MACHINES = {"hello": "STANDARD", "slow": "STANDARD", "approval": "STANDARD", "deadline": "STANDARD",
                 "echo-express": "EXPRESS"}


def demo_machines_in(listed: list) -> dict:
    """name -> type of the demo workflows among listed state machines (`GET /state-machines` entries)."""
    types = {entry["name"]: entry["type"] for entry in listed}
    return {name: types[name] for name in DEMO_MACHINES if name in types}
