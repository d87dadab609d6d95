"""Build gpunn's documentation: every example runs, then the HTML is written.

Usage: python docs/build.py            (from the repository's root or anywhere)

1. ``sphinx -b doctest``, from scratch (``docs/_build`` is removed first): reads every page (this runs the
   ``gpunn`` commands shown on the pages and the lessons that draw the pictures) and runs every
   Python example, checking its printed output.
2. ``sphinx -b html`` on the environment step 1 read: the site, in ``docs/_build/html``.

Both with ``-W --keep-going -n``: a warning, a broken cross-reference (nitpicky) or a failing example
fails the build (exit status 1), after every problem has been reported.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from sphinx.cmd.build import build_main

DOCS = Path(__file__).resolve().parent
BUILD = DOCS / "_build"


def main() -> int:
    shutil.rmtree(BUILD, ignore_errors=True)  # no page of an earlier build left behind
    common = ["-W", "--keep-going", "-n", "-q", "-d", str(BUILD / "doctrees")]
    for builder, fresh in (("doctest", ["-E"]), ("html", [])):
        start = time.perf_counter()
        status = build_main(["-b", builder, *fresh, *common, str(DOCS), str(BUILD / builder)])
        print(f"docs/build.py: sphinx -b {builder}: {'ok' if status == 0 else 'FAILED'} "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        if status != 0:
            return status
    print(f"docs/build.py: the site is in {BUILD / 'html'} (open index.html)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
