"""Drawing an expression as the lecture does: gates as circles, values above the edges, gradients below.

``gpunn.autograd.draw.picture`` says what is drawn (the nodes, and each edge's value and gradient); two renderers
draw it left to right: Graphviz's ``dot`` program (:func:`to_dot` writes its source) where it is
installed, else matplotlib (the ``plot`` extra; ``draw_matplotlib.py``). Without either,
:func:`draw` writes the DOT source and says in one line how to get a picture.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .core import Tensor, _brief

VALUE_COLOR, GRAD_COLOR = "#1b7a2f", "#c0392b"  # values green above the edge, gradients red below (as the slides)
LEGEND = ("value (forward)", "gradient (backward)")


class Node(NamedTuple):
    """One thing drawn: a gate (circle), an input or constant (text), a fork (dot) or the output (text)."""

    key: str
    kind: str  # "gate", "input", "constant", "fork", "output"
    label: str


class Edge(NamedTuple):
    """A tensor flowing from ``src`` to ``dst``, labelled with its value and the gradient it carries back."""

    src: str
    dst: str
    value: str
    grad: str
    arrow: bool = True


class Picture(NamedTuple):
    """What :func:`draw` draws, renderer-independent: nodes in drawing order and the edges between them."""

    nodes: list
    edges: list
    title: str | None


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


def picture(f: Tensor, title: str | None = None) -> Picture:
    """The expression behind ``f`` as nodes and labelled edges, inputs first and the output last.

    A tensor used by several gates forks at a dot: the edge into the dot carries its total
    gradient, each branch the part its gate sent back; the total is their sum.

    Parameters
    ----------
    f : Tensor
        The expression's output, usually after ``f.backward()`` (else the gradients are blank).
    title : str, default=None
        A heading for the picture.

    Returns
    -------
    Picture
        ``nodes`` (:class:`Node`), ``edges`` (:class:`Edge`) and ``title``.

    Raises
    ------
    TypeError
        If ``f`` is not a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x, y = ag.tensor(2.0, name="x"), ag.tensor(3.0, name="y")
    >>> f = x * y
    >>> f.backward()
    >>> from gpunn.autograd.draw import picture
    >>> [(e.value, e.grad) for e in picture(f).edges]
    [('2', '3'), ('3', '2'), ('6', '1')]
    """
    if not isinstance(f, Tensor):
        raise TypeError(f"draw/to_dot take a Tensor, got {type(f).__name__}")
    gates, consumers = _graph(f)
    nodes = [Node(f"g{id(gate)}", "gate", gate.label) for gate in gates]
    edges, drawn = [], set()

    def source(t: Tensor) -> str:
        if t.creator is not None:
            return f"g{id(t.creator)}"
        nodes.append(Node(f"t{id(t)}", "input" if t.requires_grad else "constant", t.name or _brief(t.data)))
        return f"t{id(t)}"

    for gate in gates:
        for t in gate.inputs:
            if id(t) in drawn:
                continue
            drawn.add(id(t))
            src, uses = source(t), consumers[id(t)]
            if len(uses) == 1:
                edges.append(Edge(src, f"g{id(uses[0][0])}", _brief(t.data), _brief_grad(t.grad)))
                continue
            fork = f"b{id(t)}"
            nodes.append(Node(fork, "fork", ""))
            edges.append(Edge(src, fork, _brief(t.data), _brief_grad(t.grad), arrow=False))
            for g, i in uses:
                edges.append(Edge(fork, f"g{id(g)}", _brief(t.data), _brief_grad(g.input_grads[i])))
    start = f"g{id(f.creator)}" if f.creator is not None else source(f)
    nodes.append(Node("output", "output", f.name or "out"))
    edges.append(Edge(start, "output", _brief(f.data), _brief_grad(f.grad)))
    return Picture(nodes, edges, title)


def to_dot(f: Tensor, title: str | None = None) -> str:
    """Graphviz DOT source for the expression behind ``f``: inputs left, output right (``gpunn.autograd.draw.picture``'s graph).

    Gates are circles; each tensor is an edge labelled with its value (green, above) and
    gradient (red, below), once ``backward`` has run.

    Parameters
    ----------
    f : Tensor
        The expression's output.
    title : str, default=None
        A heading above the graph.

    Returns
    -------
    str
        The DOT source; ``dot -Tsvg`` renders it.

    Raises
    ------
    TypeError
        If ``f`` is not a Tensor.

    Examples
    --------
    >>> from gpunn import autograd as ag
    >>> x = ag.tensor(2.0, name="x")
    >>> print(ag.to_dot(ag.exp(x)).splitlines()[0])
    digraph expression {
    """
    pic = picture(f, title)
    lines = ["digraph expression {", '  rankdir=LR; nodesep=0.35; ranksep=0.55;',
             '  node [fontname="Helvetica", fontsize=13]; edge [fontname="Helvetica", fontsize=11, arrowsize=0.6];']
    key = (f'<font color="{VALUE_COLOR}">{LEGEND[0]}</font>  /  '
           f'<font color="{GRAD_COLOR}">{LEGEND[1]}</font>')
    heading = f"{_esc(title)}<br/>" if title else ""
    lines.append(f'  labelloc=t; label=<{heading}<font point-size="11">{key}</font>>; fontname="Helvetica"; fontsize=14;')
    style = {
        "gate": "shape=circle, width=0.55, fixedsize=false",
        "input": "shape=plaintext, fontsize=15",
        "constant": 'shape=plaintext, fontcolor="0.4"',
        "fork": "shape=point, width=0.08",
        "output": "shape=plaintext, fontsize=15",
    }
    for node in pic.nodes:
        label = "" if node.kind == "fork" else f'label="{_esc(node.label)}", '
        lines.append(f"  {node.key} [{label}{style[node.kind]}];")
    for e in pic.edges:
        label = (f'<<font color="{VALUE_COLOR}">{_esc(e.value)}</font><br/>'
                 f'<font color="{GRAD_COLOR}">{_esc(e.grad)}</font>>')
        lines.append(f"  {e.src} -> {e.dst} [label={label}{'' if e.arrow else ', arrowhead=none'}];")
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
RENDERERS = ("auto", "graphviz", "matplotlib")


def _matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(f: Tensor, path="graph.svg", title: str | None = None, renderer: str = "auto") -> Path:
    """Draw the expression behind ``f`` to a picture: gates as circles, values in green, gradients in red, left to right.

    Parameters
    ----------
    f : Tensor
        The expression's output, usually after ``f.backward()``.
    path : str or pathlib.Path, default="graph.svg"
        The picture's file: .svg, .png or .pdf; .dot (or .gv) writes the DOT source only.
    title : str, default=None
        A heading above the graph.
    renderer : {"auto", "graphviz", "matplotlib"}, default="auto"
        "graphviz" runs Graphviz's ``dot`` program; "matplotlib" draws with matplotlib (the
        ``plot`` extra), no system package needed; "auto" takes Graphviz where ``dot`` is on the
        PATH, else matplotlib. Where neither is there, "auto" writes the DOT source beside
        ``path`` (suffix .dot), says in one line how to get the picture, and returns that path.

    Returns
    -------
    pathlib.Path
        The file written: ``path``, or the .dot file where nothing could render.

    Raises
    ------
    ValueError
        For another suffix or ``renderer``.
    RuntimeError
        If the renderer asked for is not installed, or ``dot`` fails.
    TypeError
        If ``f`` is not a Tensor.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gpunn import autograd as ag
    >>> x, y, z = ag.tensor(-2.0, name="x"), ag.tensor(5.0, name="y"), ag.tensor(-4.0, name="z")
    >>> f = (x + y) * z
    >>> f.backward()
    >>> ag.draw(f, pathlib.Path(tempfile.mkdtemp()) / "f.png", renderer="matplotlib").suffix
    '.png'
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in RENDER_FORMATS + ("dot", "gv"):
        raise ValueError(f"draw: path must end in .svg, .png, .pdf or .dot, got {path.name!r}")
    if renderer not in RENDERERS:
        raise ValueError(f"draw: renderer must be one of {', '.join(map(repr, RENDERERS))}, got {renderer!r}")
    source = to_dot(f, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(source)
        return path
    dot = shutil.which("dot")
    if renderer == "auto":
        renderer = "graphviz" if dot else "matplotlib" if _matplotlib_available() else None
    if renderer is None:
        src = path.with_suffix(".dot")
        src.write_text(source)
        print(f"gpunn.autograd.draw: neither Graphviz's dot program nor matplotlib was found, so wrote {src}; "
              f"pip install -e '.[plot]' in gpunn's directory draws it with matplotlib, or render it with "
              f"`dot -T{fmt} {src} -o {path}` (install: apt-get install graphviz)", file=sys.stderr)
        return src
    if renderer == "matplotlib":
        if not _matplotlib_available():
            raise RuntimeError("draw: renderer='matplotlib' needs the plot extra: pip install -e '.[plot]' in "
                               "gpunn's directory")
        from .draw_matplotlib import render

        return render(picture(f, title), path)
    if dot is None:
        raise RuntimeError("draw: renderer='graphviz' needs Graphviz's dot program on the PATH "
                           "(apt-get install graphviz); renderer='matplotlib' needs no system package")
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(path)], input=source, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw: dot failed ({done.returncode}): {done.stderr.strip()}")
    return path
