"""The tutorial notebooks: each runs top to bottom in a fresh kernel (so its inline
assertions against the engine and PyTorch hold), each committed copy carries its
outputs and at least one figure, and tutorials/README.md lists every one.
Execution goes through tutorials/build.py, the script that writes the outputs."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
import nbformat  # noqa: E402

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
_spec = importlib.util.spec_from_file_location("tutorials_build", TUTORIALS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

NOTEBOOKS = build.notebooks()
CELL_TIMEOUT = 300   # seconds for one cell; a whole notebook takes seconds to a minute


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path):
    nb, _ = build.execute(path, timeout=CELL_TIMEOUT, threads=1)   # one thread: steady on a busy machine
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_with_outputs(path):
    """Readable without running: every code cell was executed, in order, and a figure is there."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert None not in counts, f"{path.name}: cell {counts.index(None) + 1} has no saved output; run build.py"
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: cells were not run top to bottom: {counts}"
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no figure in the saved outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[-1].cell_type == "markdown", \
        f"{path.name}: should open with what it will show and close with what it showed"


def test_readme_lists_every_notebook():
    readme = (TUTORIALS / "README.md").read_text()
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"tutorials/README.md does not list {missing}"
