"""The package's imports form no cycle (library and CLI), and the library never imports the CLI.  Imports
inside functions (lazy imports) are edges too: deferring an import does not remove the dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"regioncount": ROOT / "regioncount", "regioncount_cli": ROOT / "cli"}


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _imports(module: str, path: Path, typing_only: bool = True) -> set[str]:
    """The package modules (or packages) that ``module`` (file ``path``) imports, resolved to dotted names.
    ``typing_only=False`` leaves out imports under ``if TYPE_CHECKING:`` (annotations, not dependencies)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skipped.update(id(child) for child in ast.walk(node))
    package_parts = module.split(".") if path.stem == "__init__" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):  # every import, at module level or inside functions and if-blocks
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[:len(package_parts) - node.level + 1]
                if node.module is None:
                    found.update(".".join([*base, alias.name]) for alias in node.names)
                else:
                    found.add(".".join([*base, node.module]))
            elif node.module and node.module.split(".")[0] in PACKAGES:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES)
    return found


def _graph(typing_only: bool = True) -> nx.DiGraph:
    graph = nx.DiGraph()
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            name = _module_name(package, folder, path)
            graph.add_node(name)
            for target in _imports(name, path, typing_only):
                graph.add_edge(name, target)
    return graph


def test_no_import_cycle():
    graph = _graph()
    assert graph.number_of_nodes() > 20
    assert graph.has_edge("regioncount.line.exact1d", "regioncount.line.sink")  # the graph does see imports
    assert graph.has_edge("regioncount_cli.main", "regioncount_cli.common")
    cycles = list(nx.simple_cycles(graph))
    assert cycles == [], f"import cycles: {cycles}"


#: ``python -m regioncount`` runs this entry point; it is the program, not the library, and no module imports it
ENTRY_POINTS = {"regioncount.__main__"}


def test_the_library_never_imports_the_cli():
    graph = _graph()
    assert graph.has_edge("regioncount.__main__", "regioncount_cli.main")  # the exemption is needed
    for source, target in graph.edges:
        assert target not in ENTRY_POINTS, (source, target)
        if (source.startswith("regioncount.") or source == "regioncount") and source not in ENTRY_POINTS:
            assert not target.startswith("regioncount_cli"), (source, target)


def test_python_dash_m_runs_the_command_line():
    import subprocess
    import sys

    for package in ("regioncount", "regioncount_cli"):
        out = subprocess.run([sys.executable, "-m", package, "--help"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "Usage: regioncount" in out.stdout and "count" in out.stdout


#: The library's subpackages and the ones each may import (``docs/architecture.md``): dependencies point one
#: way, from the engines and the theory down to the models and the core.
LAYERS = {
    "core": set(),
    "models": {"core"},
    "exact": {"core", "models"},
    "graph": {"core", "models"},
    "io": {"core", "models", "graph"},
    "line": {"core", "models", "exact", "graph"},
    "sampling": {"core", "models", "line", "graph"},
    "partition": {"core", "models", "exact", "line", "sampling", "graph"},
    "theory": {"core", "models", "exact", "line"},
    "parallel": {"core", "models", "line", "sampling"},
    "viz": {"core", "models", "line", "theory"},
    "bias": {"core", "models"},
    "experiments": {"core", "models", "io", "line", "theory", "viz", "bias"},
}


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "regioncount" and len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) \
        else None


def test_subpackages_import_only_the_layers_below_them():
    """Every module of a subpackage imports only its own subpackage and those ``LAYERS`` allows (imports
    inside functions count; imports only for type annotations do not); no subpackage imports the package root;
    every library module lives in a subpackage."""
    graph = _graph(typing_only=False)
    folders = {path.name for path in PACKAGES["regioncount"].iterdir() if (path / "__init__.py").exists()}
    assert folders == set(LAYERS)
    loose = [path.name for path in PACKAGES["regioncount"].glob("*.py") if path.name not in ("__init__.py", "__main__.py")]
    assert loose == [], f"modules outside the subpackages: {loose}"
    assert graph.has_edge("regioncount.line.exact1d", "regioncount.line.sink")  # the graph does see imports
    assert graph.has_edge("regioncount.partition.box_partition", "regioncount.line.forward_error")
    bad = []
    for source, target in graph.edges:
        here, there = _folder(source), _folder(target)
        if here is None or not target.startswith("regioncount"):
            continue
        if target == "regioncount" or (there is not None and there != here and there not in LAYERS[here]):
            bad.append((source, target))
    assert bad == [], f"imports against the layering: {bad}"


def test_the_layers_form_no_cycle():
    graph = nx.DiGraph([(source, target) for source, targets in LAYERS.items() for target in targets])
    assert nx.is_directed_acyclic_graph(graph)
