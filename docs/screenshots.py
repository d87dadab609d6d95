"""Screenshots of built documentation pages, as a browser shows them: headless Chromium on a local server.

Usage (after ``python docs/build.py``):
    python docs/screenshots.py                        # the API pages of MLPClassifier, KNeighborsClassifier, Trainer
    python docs/screenshots.py api/generated/gpunn.History.html --out /tmp/shots --height 1600

Serves ``docs/_build/html`` on a free localhost port (the pages load their CSS and scripts as on a
web server, which ``file://`` URLs do not always allow) and writes one PNG per page into ``--out``
(default ``docs/_build/screenshots``). Each page gets a fresh Chromium profile and no network beyond
localhost, so nothing cached or fetched changes the picture.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HTML = Path(__file__).resolve().parent / "_build" / "html"
PAGES = ["api/generated/gpunn.MLPClassifier.html", "api/generated/gpunn.KNeighborsClassifier.html",
         "api/generated/gpunn.Trainer.html"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # one line per file fetched would bury the result
        pass


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        raise SystemExit(f"docs/screenshots.py: no Chromium found ({', '.join(BROWSERS)}); "
                         "install one, e.g. apt-get install chromium")
    return found


def shoot(pages: list[str], out: Path, width: int, height: int) -> list[Path]:
    """One PNG per page of ``docs/_build/html``, as a window of ``width`` x ``height`` pixels shows its top."""
    missing = [p for p in pages if not (HTML / p).exists()]
    if missing:
        raise SystemExit(f"docs/screenshots.py: not built: {', '.join(missing)} (run python docs/build.py first)")
    out.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(HTML)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chromium, written = browser(), []
    try:
        for page in pages:
            target = out / (Path(page).stem + ".png")
            with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
                done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                       f"--screenshot={target}", f"http://127.0.0.1:{server.server_port}/{page}"],
                                      capture_output=True, text=True, timeout=120)
            if done.returncode != 0 or not target.exists():
                raise SystemExit(f"docs/screenshots.py: Chromium failed on {page}: {done.stderr.strip()[-2000:]}")
            written.append(target)
            print(f"docs/screenshots.py: {page} -> {target}")
    finally:
        server.shutdown()
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="*", default=PAGES, help="pages under docs/_build/html (default: the three API pages)")
    ap.add_argument("--out", type=Path, default=HTML.parent / "screenshots", help="folder for the PNGs")
    ap.add_argument("--width", type=int, default=1400, help="window width in pixels (default: 1400)")
    ap.add_argument("--height", type=int, default=2200, help="window height in pixels (default: 2200)")
    args = ap.parse_args(argv)
    shoot(args.pages, args.out, args.width, args.height)
    return 0


if __name__ == "__main__":
    sys.exit(main())
