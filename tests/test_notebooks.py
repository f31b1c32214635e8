"""Every shipped notebook runs end to end through nbclient against the installed kernel,
with no error output."""
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def outputs_of(nb, kind):
    return [o for cell in nb.cells if cell.cell_type == "code"
            for o in cell.outputs if o.output_type == kind]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "tandem"
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), \
        "notebooks are stored without outputs"
    NotebookClient(nb, timeout=600, kernel_name="tandem").execute()
    assert outputs_of(nb, "error") == []
    assert all(cell.execution_count for cell in nb.cells if cell.cell_type == "code")


def test_hello_notebook_outputs():
    nb = nbformat.read(NOTEBOOKS[0].parent / "00-hello.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="tandem").execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].text == "hello, world\n"
    assert code[1].outputs[0].data["text/plain"] == "6"
    streamed = "".join(o.text for o in code[2].outputs if o.output_type == "stream")
    assert streamed.startswith("waiting...\ndone after 1.")
    assert code[3].outputs[0].data["text/plain"] == "84"
    for cell in code:
        footer = cell.outputs[-1]
        assert footer.output_type == "display_data"
        assert footer.metadata["tandem"]["role"] == "timing"
        assert "compile" in footer.data["text/plain"] and "run" in footer.data["text/plain"]
