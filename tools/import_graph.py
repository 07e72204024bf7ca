"""`python -m tools.import_graph`: the import graph's cycles (there should be none) and chalicelib's layers.

The graph is grimp's (the one `lint-imports` checks against .importlinter), so imports inside
functions count too. app.py is a module, not a package, so grimp cannot take it as a root: its
imports are read here with `ast`. Exit status 1 when a cycle exists or app.py imports dev-only code.
"""
import argparse
import ast
import configparser
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ROOT_PACKAGES = ("chalicelib", "local", "tools", "bench", "tests")
# Code that is never deployed: production (app.py, chalicelib) must not import it.
DEV_ONLY = ("local", "tools", "bench", "tests", "sfn_gateway_client")
LAYERS_CONTRACT = "importlinter:contract:chalicelib-layers"


def find_cycles(imports: dict) -> list:
    """Every strongly connected group of two or more modules (or one importing itself), each sorted."""
    # Tarjan's algorithm, iterative so that a deep graph cannot hit the recursion limit.
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    for start in sorted(imports):
        if start in index:
            continue
        work = [(start, iter(sorted(imports.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in imports.get(node, ()):
                    cycles.append(sorted(group))
    return sorted(cycles)


def module_imports() -> dict:
    """module -> the project modules it imports (anywhere in its body), from grimp."""
    import grimp

    sys.path.insert(0, str(PROJECT_DIR))
    graph = grimp.build_graph(*ROOT_PACKAGES, cache_dir=None)
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def app_imports(modules) -> set:
    """The modules app.py imports, at the top or inside its functions (`from package import module` too)."""
    tree = ast.parse((PROJECT_DIR / "app.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def read_layers() -> list:
    """chalicelib's layers from .importlinter, top first; each a list of sibling modules."""
    parser = configparser.ConfigParser()
    parser.read(PROJECT_DIR / ".importlinter")
    lines = [line.strip() for line in parser[LAYERS_CONTRACT]["layers"].splitlines() if line.strip()]
    return [[part.strip() for part in line.split("|")] for line in lines]


def _owner(module: str, layers: list) -> tuple[int, str] | tuple[None, str]:
    """(the number of the module's layer, the layer's name for it), or (None, its package)."""
    for number, layer in enumerate(layers):
        for name in layer:
            if module == name or module.startswith(name + "."):
                return number, name
    return None, ".".join(module.split(".")[:2])


def report(imports: dict, app: set, layers: list) -> tuple[list, bool]:
    """The lines to print, and whether the graph is sound (no cycle, app.py imports no dev-only code)."""
    cycles = find_cycles(imports)
    lines = [f"module import cycles (imports inside functions included): {len(cycles) or 'none'}"]
    lines += [f"  cycle: {' -> '.join(cycle)}" for cycle in cycles]
    forbidden = sorted(name for name in app if name.split(".")[0] in DEV_ONLY)
    lines.append(f"app.py imports dev-only code: {', '.join(forbidden) or 'no'}")
    lines.append("chalicelib's layers (top first; each imports only from the layers below it):")
    lines.append("  0. app.py: " + ", ".join(sorted(n for n in app if n.startswith("chalicelib"))))
    for number, layer in enumerate(layers, start=1):
        below = sorted({
            _owner(imported, layers)[1]
            for module, targets in imports.items() if _owner(module, layers)[0] == number - 1
            for imported in targets if imported.startswith("chalicelib") and _owner(imported, layers)[0] != number - 1
        })
        lines.append(f"  {number}. {' | '.join(layer)}" + (f"  ->  {', '.join(below)}" if below else ""))
    return lines, not cycles and not forbidden


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    imports = module_imports()
    lines, sound = report(imports, app_imports(imports), read_layers())
    print("\n".join(lines))
    return 0 if sound else 1


if __name__ == "__main__":
    sys.exit(main())
