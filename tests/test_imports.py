"""The package's imports form no cycle (library and CLI), and the library never imports the CLI.  Imports
inside functions (lazy imports) are edges too: deferring an import does not remove the dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"regioncount": ROOT / "regioncount", "regioncount_cli": ROOT / "cli"}


def _imports(package: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):  # every import, at module level or inside functions and if-blocks
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = f"{package}.{node.module}" if node.module else package
                if node.module is None:
                    found.update(f"{package}.{alias.name}" for alias in node.names)
                else:
                    found.add(base)
            elif node.level == 0 and node.module and node.module.split(".")[0] in PACKAGES:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES)
    return found


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for package, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            graph.add_node(name)
            for target in _imports(package, path):
                graph.add_edge(name, target)
    return graph


def test_no_import_cycle():
    graph = _graph()
    assert graph.number_of_nodes() > 20
    assert graph.has_edge("regioncount.exact1d", "regioncount.walk1d")  # the graph does see imports
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
