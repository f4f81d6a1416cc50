"""README.md is generated from nbs/index.ipynb and must not drift from it."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_matches_index_notebook(tmp_path):
    subprocess.run([sys.executable, "-m", "nbconvert", "--to", "markdown", "--output-dir", str(tmp_path),
                    "--output", "README", str(REPO/"nbs"/"index.ipynb")], check=True, capture_output=True)
    assert (tmp_path/"README.md").read_text() == (REPO/"README.md").read_text(), \
        "README.md is out of date: regenerate it with the command in nbs/index.ipynb"


def test_ci_runs_readme_test_command():
    readme, ci = (REPO/"README.md").read_text(), (REPO/".ci"/"run").read_text()
    assert "nbdev-test && pytest" in readme
    assert "nbdev-test && pytest" in ci
