"""The examples run as printed and do what they say."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_trains_the_spiral():
    run = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--device", "cpu"], capture_output=True,
                         text=True, check=True, timeout=300)
    accuracy = float(run.stdout.split("training accuracy ")[1].rstrip("%\n")) / 100
    assert accuracy > 0.95


def test_the_readme_example_runs_and_learns():
    """README.md's Python example, as printed: its last line prints the MLPClassifier's test accuracy."""
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600,
                         cwd=EXAMPLES.parent)
    assert float(run.stdout.split()[-1]) > 0.95
