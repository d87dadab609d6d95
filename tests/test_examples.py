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
