"""The README and ``docs/api.md`` show what really happens: every Python block runs as it stands (its
``assert`` lines check the values it shows), and every command of the README's tour that names a real file
runs and prints the table rows shown."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "docs" / "api.md", ROOT / "docs" / "graphs.md"]


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), re.S)


def _python_blocks() -> list:
    out = []
    for page in PAGES:
        for k, block in enumerate(_blocks(page, "python")):
            marks = [pytest.mark.slow] if "open_engine(workers" in block else []  # starts a Dask cluster
            out.append(pytest.param(block, id=f"{page.name}-{k}", marks=marks))
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A scratch folder holding a copy of ``data/``, as the examples expect to run from the repository."""
    shutil.copytree(ROOT / "data", tmp_path / "data")
    return tmp_path


@pytest.mark.parametrize("block", _python_blocks())
def test_python_examples_run(block: str, workdir: Path):
    script = workdir / "example.py"
    script.write_text(block)
    out = subprocess.run([sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_readme_tour_prints_what_it_shows(workdir: Path):
    (tour,) = _blocks(ROOT / "README.md", "console")
    commands: list[tuple[str, list[str]]] = []
    for line in tour.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:].split("#")[0].strip(), []))
        elif commands:
            commands[-1][1].append(line)
    ran = 0
    for command, shown in commands:
        args = command.split()
        if "MODEL" in args:  # a placeholder for the user's own file
            continue
        assert args[0] == "regioncount"
        out = subprocess.run([sys.executable, "-m", "regioncount", *args[1:]], cwd=workdir, capture_output=True,
                             text=True, timeout=600, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, (command, out.stderr[-2000:])
        ran += 1
        for row in shown:  # "│ label │ value │": the same label with the same value
            cells = [cell.strip() for cell in row.strip().strip("│").split("│")]
            assert re.search(rf"│ {re.escape(cells[0])}\s+│ {re.escape(cells[1])}\s+│", out.stdout), (command, row)
    assert ran >= 3


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    for page in re.findall(r"`(docs/[\w-]+\.md)`", text):
        assert (ROOT / page).exists(), page
    setup = _blocks(ROOT / "README.md", "bash")[0].splitlines()
    assert setup[1].split("#")[0].strip() == "python -m pytest"  # the command CI runs (.ci/run)
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text().splitlines()[-1]
