"""tools/import_graph.py: the import graph has no cycle, and it prints chalicelib's layers from .importlinter."""
import subprocess
import sys
from pathlib import Path

from tools import import_graph

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_the_project_graph_has_no_cycle_and_prints_every_layer():
    # Given the project as it is on disk
    # When the script runs in a fresh process, as `python -m tools.import_graph`
    done = subprocess.run([sys.executable, "-m", "tools.import_graph"], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)
    # Then it exits 0, reports no cycle and no dev-only import in app.py, and lists the layers top first
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "module import cycles (imports inside functions included): none"
    assert lines[1] == "app.py imports dev-only code: no"
    layer_lines = [line.strip() for line in lines[3:]]
    assert layer_lines[0].startswith("0. app.py: ") and "chalicelib.factory" in layer_lines[0]
    assert [line.split("  ->")[0] for line in layer_lines[1:]] == [
        f"{number}. {' | '.join(layer)}" for number, layer in enumerate(import_graph.read_layers(), start=1)
    ]
    assert layer_lines[-1] == f"{len(import_graph.read_layers())}. chalicelib.errors"


def test_find_cycles_reports_a_loop_through_three_modules_and_a_self_import():
    # Given a graph with a three-module loop, a module importing itself and an acyclic tail
    imports = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    # When its cycles are found
    # Then exactly the loop and the self-import are reported
    assert import_graph.find_cycles(imports) == [["a", "b", "c"], ["e"]]


def test_a_cycle_or_a_dev_only_import_in_app_makes_the_report_unsound():
    # Given a graph with a loop, and app.py importing the local stack
    imports = {"chalicelib.config": {"chalicelib.factory"}, "chalicelib.factory": {"chalicelib.config"}}
    lines, sound = import_graph.report(imports, {"local.engine", "chalicelib.factory"}, [["chalicelib.factory"]])
    # Then the report names both and is not sound
    assert sound is False
    assert lines[0] == "module import cycles (imports inside functions included): 1"
    assert lines[1] == "  cycle: chalicelib.config -> chalicelib.factory"
    assert lines[2] == "app.py imports dev-only code: local.engine"
