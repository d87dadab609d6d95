"""Drawing an expression as the lecture does: gates as circles, values above the edges, gradients below.

The DOT text is written here; Graphviz's ``dot`` program lays it out. Without ``dot``,
:func:`draw` writes the source and says in one line how to render it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .core import Tensor, _brief


VALUE_COLOR, GRAD_COLOR = "#1b7a2f", "#c0392b"  # values green above the edge, gradients red below (as the slides)




def _graph(f: Tensor):
    """The gates behind ``f`` and, for each tensor, the gates that consume it."""
    gates, consumers, stack, seen = [], {}, [f.creator] if f.creator else [], set()
    while stack:
        gate = stack.pop()
        if id(gate) in seen:
            continue
        seen.add(id(gate))
        gates.append(gate)
        for i, t in enumerate(gate.inputs):
            consumers.setdefault(id(t), []).append((gate, i))
            if t.creator is not None:
                stack.append(t.creator)
    return gates, consumers


def to_dot(f: Tensor, title: str | None = None) -> str:
    """Graphviz DOT source for the expression behind ``f``: inputs left, output right.

    Gates are circles; each tensor is an edge labelled with its value (green, above) and
    gradient (red, below), once ``backward`` has run. A tensor used by several gates
    forks at a dot: the edge into the dot carries its total gradient, each branch the
    part its gate sent back; the total is their sum.
    """
    if not isinstance(f, Tensor):
        raise TypeError(f"draw/to_dot take a Tensor, got {type(f).__name__}")
    gates, consumers = _graph(f)
    lines = ["digraph expression {", '  rankdir=LR; nodesep=0.35; ranksep=0.55;',
             '  node [fontname="Helvetica", fontsize=13]; edge [fontname="Helvetica", fontsize=11, arrowsize=0.6];']
    key = (f'<font color="{VALUE_COLOR}">value (forward)</font>  /  '
           f'<font color="{GRAD_COLOR}">gradient (backward)</font>')
    heading = f"{_esc(title)}<br/>" if title else ""
    lines.append(f'  labelloc=t; label=<{heading}<font point-size="11">{key}</font>>; fontname="Helvetica"; fontsize=14;')

    def label(value, grad):
        return (f'<<font color="{VALUE_COLOR}">{_esc(_brief(value))}</font><br/>'
                f'<font color="{GRAD_COLOR}">{_esc(_brief_grad(grad))}</font>>')

    def source(t: Tensor) -> str:
        if t.creator is not None:
            return f"g{id(t.creator)}"
        node = f"t{id(t)}"
        text = t.name or _brief(t.data)
        style = 'shape=plaintext, fontsize=15' if t.requires_grad else 'shape=plaintext, fontcolor="0.4"'
        lines.append(f'  {node} [label="{_esc(text)}", {style}];')
        return node

    for gate in gates:
        lines.append(f'  g{id(gate)} [label="{_esc(gate.label)}", shape=circle, width=0.55, fixedsize=false];')
    drawn = set()
    for gate in gates:
        for t in gate.inputs:
            if id(t) in drawn:
                continue
            drawn.add(id(t))
            src, uses = source(t), consumers[id(t)]
            if len(uses) == 1:
                lines.append(f"  {src} -> g{id(uses[0][0])} [label={label(t.data, t.grad)}];")
                continue
            fork = f"b{id(t)}"
            lines.append(f'  {fork} [shape=point, width=0.08];')
            lines.append(f"  {src} -> {fork} [label={label(t.data, t.grad)}, arrowhead=none];")
            for g, i in uses:
                lines.append(f"  {fork} -> g{id(g)} [label={label(t.data, g.input_grads[i])}];")
    out_name = f.name or "out"
    lines.append(f'  output [label="{_esc(out_name)}", shape=plaintext, fontsize=15];')
    start = f"g{id(f.creator)}" if f.creator is not None else source(f)
    lines.append(f"  {start} -> output [label={label(f.data, f.grad)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _brief_grad(g) -> str:
    """A gradient's label: its numbers when few, else its size (the shape is on the value above)."""
    if g is None:
        return " "
    if g.size <= 3:
        return _brief(g)
    g = g.get() if hasattr(g, "get") else g
    return f"norm {float(np.sqrt((g.astype(np.float64) ** 2).sum())):.3g}"


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


RENDER_FORMATS = ("svg", "png", "pdf")


def draw(f: Tensor, path="graph.svg", title: str | None = None) -> Path:
    """Draw the expression behind ``f`` (see :func:`to_dot`) to ``path`` (.svg, .png, .pdf, or .dot for the source).

    Renders with Graphviz's ``dot`` program. Where it is missing, writes the DOT source
    beside ``path`` (suffix .dot), says in one line how to render it, and returns that path.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in RENDER_FORMATS + ("dot", "gv"):
        raise ValueError(f"draw: path must end in .svg, .png, .pdf or .dot, got {path.name!r}")
    source = to_dot(f, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(source)
        return path
    dot = shutil.which("dot")
    if dot is None:
        src = path.with_suffix(".dot")
        src.write_text(source)
        print(f"gpunn.autograd.draw: Graphviz's dot program was not found, so wrote {src}; render it with "
              f"`dot -T{fmt} {src} -o {path}` (install: apt-get install graphviz)", file=sys.stderr)
        return src
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw: dot failed ({done.returncode}): {done.stderr.strip()}")
    return path
