"""The demo workflows (statemachines/) the tests use. A user may add workflows of their own, so tests
check that these are served, never that nothing else is."""

DEMO_MACHINES = {"hello": "STANDARD", "slow": "STANDARD", "approval": "STANDARD", "deadline": "STANDARD",
                 "echo-express": "EXPRESS"}


def demo_machines_in(listed) -> dict:
    """name -> type of the demo workflows among listed (`GET /state-machines` entries or `{name: {"type"}}`)."""
    types = ({name: entry["type"] for name, entry in listed.items()} if isinstance(listed, dict)
             else {entry["name"]: entry["type"] for entry in listed})
    return {name: types[name] for name in DEMO_MACHINES if name in types}
