"""``.. lesson:: NAME``: run a gpunn lesson while the docs build and show its pictures and summary.

The lesson runs once per build (when its page is read), on the CPU with its default seed, into
``docs/_generated/lessons/NAME/``; its PNG files become figures, its summary a literal block, and the
seconds it took are stated under them. A lesson that raises fails the build.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


class LessonDirective(SphinxDirective):
    required_arguments = 1
    option_spec = {"width": directives.unchanged}

    def run(self):
        import os

        import gpunn as gn

        name = self.arguments[0]
        out = Path(self.env.srcdir) / "_generated" / "lessons" / name
        start = time.perf_counter()
        try:
            result = gn.lessons.run(name, out, device="cpu", seed=0)
        except Exception as e:  # reported where the page asks for it; -W then fails the build
            raise self.error(f"lesson {name!r} failed: {type(e).__name__}: {e}") from e
        seconds = time.perf_counter() - start
        made = []
        for path in map(Path, result["files"]):
            if path.suffix != ".png":
                continue
            rel = "/" + path.resolve().relative_to(Path(self.env.srcdir).resolve()).as_posix()
            image = nodes.image(uri=rel, alt=f"gpunn lesson {name}: {path.stem}")
            if "width" in self.options:  # else its own size, at most the column's (the theme's max-width)
                image["width"] = self.options["width"]
            self.env.note_dependency(str(path))
            made.append(nodes.figure("", image))
        summary = nodes.literal_block(result["summary"], result["summary"])
        note = nodes.paragraph(text=(f"Drawn while these docs were built: gn.lessons.run({name!r}, out_dir, "
                                     f"device='cpu', seed=0) took {seconds:.1f} s on {cpu_name()} "
                                     f"({os.cpu_count()} logical CPUs)."))
        note["classes"].append("lesson-note")
        return [*made, summary, note]


def setup(app):
    app.add_directive("lesson", LessonDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
