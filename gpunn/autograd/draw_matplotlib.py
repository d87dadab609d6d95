"""Drawing an expression's :class:`~gpunn.autograd.draw.Picture` with matplotlib, where Graphviz is not installed.

The same graph as Graphviz draws, laid out the same way, left to right: each node sits one column
before its first consumer, the output last; rows come from a depth-first walk back from the output,
inputs one row each in the order the gates take them (expressions before plain inputs, as Graphviz
puts a constant added on the way below the chain), and each gate midway between its inputs (the
graphs are expressions: trees, with a fork where a tensor is used twice). An edge runs straight
from its source, then curves into its target; its value (green) sits above the straight run and
its gradient (red) below, in its source's row, so that labels of different rows never meet. Sizes
are in inches: one axes unit is one inch of the figure, so text never scales.
"""

from __future__ import annotations

from pathlib import Path

from .draw import GRAD_COLOR, LEGEND, VALUE_COLOR, Picture

COLUMN, ROW = 1.55, 0.95  # inches between columns and between rows
FONT = {"gate": 12, "input": 14, "constant": 12, "output": 14, "edge": 10.5, "title": 12.5, "legend": 10.5}
STRAIGHT = 0.5  # the share of an edge drawn straight from its source: its labels sit on that part
DPI = 96  # as Graphviz's PNGs
FAMILY = "DejaVu Sans"  # matplotlib's own font: the same picture on every machine


def _text_width(text: str, size: float) -> float:
    """The width of ``text`` at ``size`` points, in inches (from the font's advance widths, spaces included)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    return text_to_path.get_text_width_height_descent(text, FontProperties(family=FAMILY, size=size), False)[0] / 72


def _columns(pic: Picture) -> dict:
    """Each node's column: one before its leftmost consumer; the output's is 0, the rest negative."""
    consumers = {}
    for e in pic.edges:
        consumers.setdefault(e.src, []).append(e.dst)
    column = {"output": 0}
    changed = True
    while changed:  # a few passes: the graphs are small and acyclic
        changed = False
        for node in pic.nodes:
            targets = [column[c] for c in consumers.get(node.key, []) if c in column]
            if targets and column.get(node.key) != min(targets) - 1:
                column[node.key] = min(targets) - 1
                changed = True
    return column


def _rows(pic: Picture, column: dict) -> dict:
    """Each node's row: inputs in the order the walk back from the output meets them, gates between their inputs.

    Where a tensor forks, its consumers would land on one spot: column by column, left to right, a
    node takes the mean row of its (already placed) inputs, and nodes of one column closer than a
    row apart are spread to a row apart around their mean.
    """
    inputs = {}
    for e in pic.edges:
        inputs.setdefault(e.dst, []).append(e.src)
    row, next_leaf = {}, [0.0]

    def place(key):
        if key in row:
            return
        sources = inputs.get(key, [])
        if not sources:
            row[key] = next_leaf[0]
            next_leaf[0] += 1
            return
        row[key] = None  # placed below, once its inputs are
        for s in sorted(sources, key=lambda s: s not in inputs):  # expressions first: a constant added on the
            place(s)                                                # way then sits below the chain, as in Graphviz

    place("output")
    for col in sorted(set(column.values())):
        here = [k for k in row if column[k] == col]
        for k in here:
            if inputs.get(k):
                row[k] = sum(row[s] for s in inputs[k]) / len(inputs[k])
        here.sort(key=lambda k: row[k])
        groups = []  # runs of nodes closer than a row apart, spread evenly around their mean
        for k in here:
            if groups and row[k] - row[groups[-1][-1]] < 1:
                groups[-1].append(k)
            else:
                groups.append([k])
        for group in groups:
            mean = sum(row[k] for k in group) / len(group)
            for i, k in enumerate(group):
                row[k] = mean + i - (len(group) - 1) / 2
    return row


def _half_width(node) -> float:
    """Half the node's width in inches: where its edges start and end."""
    if node.kind == "gate":
        return _radius(node.label)
    if node.kind == "fork":
        return 0.0
    return _text_width(node.label, FONT[node.kind]) / 2 + 0.06


def _radius(label: str) -> float:
    return max(0.22, _text_width(label, FONT["gate"]) / 2 + 0.12)


def _edge_path(x0, y0, x1, y1, label_width, labels_at_end=False, lift=0.0):
    """An edge from (x0, y0) to (x1, y1): a straight run long enough for its labels, and a curve with horizontal ends.

    The run is at the start, in the source's row, or with ``labels_at_end`` at the end, in the
    target's row (for the edges leaving a fork, which share their start). ``lift`` raises (or lowers)
    the run of a second edge between the same two nodes (a tensor a gate takes twice, ``x * x``),
    which then enters its target a little off centre. Returns the path and the middle of the run,
    where the labels go.
    """
    from matplotlib.path import Path as CurvePath

    verts, codes = [(x0, y0)], [CurvePath.MOVETO]

    def curve(xa, ya, xb, yb):
        mid = (xa + xb) / 2
        verts.extend([(mid, ya), (mid, yb), (xb, yb)])
        codes.extend([CurvePath.CURVE4] * 3)

    def straight(xb, yb):
        verts.append((xb, yb))
        codes.append(CurvePath.LINETO)

    run = min(max(STRAIGHT * (x1 - x0), label_width + 0.12), 0.8 * (x1 - x0))
    if y1 == y0 and not lift:  # one straight line: the labels in its middle
        straight(x1, y1)
        return CurvePath(verts, codes), ((x0 + x1) / 2, y0)
    if not labels_at_end:
        straight(x0 + run, y0)
        curve(x0 + run, y0, x1, y1)
        return CurvePath(verts, codes), (x0 + run / 2, y0)
    y_run, tail = y1 + lift, (0.25 if lift else 0.0)
    xb, xc = x1 - tail - run, x1 - tail
    if y_run != y0:
        curve(x0, y0, xb, y_run)
    else:
        straight(xb, y_run)
    straight(xc, y_run)
    if lift:
        curve(xc, y_run, x1, y1 + 0.4 * lift)
    return CurvePath(verts, codes), ((xb + xc) / 2, y_run)


def render(pic: Picture, path) -> Path:
    """Draw ``pic`` to ``path`` (.svg, .png or .pdf) with matplotlib; returns ``path``.

    Parameters
    ----------
    pic : Picture
        What :func:`gpunn.autograd.draw.picture` made of the expression.
    path : str or pathlib.Path
        The file; its suffix picks the format.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch

    nodes = {n.key: n for n in pic.nodes}
    column = _columns(pic)
    row = _rows(pic, column)
    first = min(column.values())
    pos = {k: ((column[k] - first) * COLUMN, -row[k] * ROW) for k in nodes}
    half = {k: _half_width(n) for k, n in nodes.items()}

    left = min(pos[k][0] - half[k] for k in nodes) - 0.25
    right = max(pos[k][0] + half[k] for k in nodes) + 0.25
    bottom = min(y for _, y in pos.values()) - 0.45
    top_of_graph = max(y for _, y in pos.values()) + 0.5
    heading = [pic.title] if pic.title else []
    title_height = 0.26 * len(heading) + 0.32
    legend_width = 2 * max(map(lambda t: _text_width(t + "  /", FONT["legend"]), LEGEND))
    wide = max([legend_width] + [_text_width(t, FONT["title"]) for t in heading]) + 0.4
    if right - left < wide:  # the heading is wider than the graph: widen both sides evenly
        grow = (wide - (right - left)) / 2
        left, right = left - grow, right + grow
    top = top_of_graph + title_height
    width, height = right - left, top - bottom

    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": FAMILY}):  # SVG keeps its text
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
        ax.axis("off")

        center = (left + right) / 2
        y = top - 0.22
        for line in heading:
            ax.text(center, y, line, ha="center", va="center", fontsize=FONT["title"])
            y -= 0.26
        gap = _text_width("  ", FONT["legend"])  # one line in two colours: the pieces either side of the slash
        ax.text(center - gap, y, LEGEND[0], ha="right", va="center", fontsize=FONT["legend"], color=VALUE_COLOR)
        ax.text(center, y, "/", ha="center", va="center", fontsize=FONT["legend"], color="0.3")
        ax.text(center + gap, y, LEGEND[1], ha="left", va="center", fontsize=FONT["legend"], color=GRAD_COLOR)

        between, seen = {}, {}
        for e in pic.edges:
            between[(e.src, e.dst)] = between.get((e.src, e.dst), 0) + 1
        for e in pic.edges:
            (xs, ys), (xd, yd) = pos[e.src], pos[e.dst]
            twins, nth = between[(e.src, e.dst)], seen.get((e.src, e.dst), 0)  # equal edges compare equal: count
            seen[(e.src, e.dst)] = nth + 1
            lift = 0.54 * ((twins - 1) / 2 - nth)
            entry = min(abs(0.4 * lift), 0.9 * half[e.dst])
            x1 = xd - (half[e.dst] ** 2 - entry ** 2) ** 0.5  # on the circle, where a lifted edge meets it
            label_width = max(_text_width(e.value, FONT["edge"]), _text_width(e.grad, FONT["edge"]))
            curve, (lx, ly) = _edge_path(xs + half[e.src], ys, x1, yd, label_width,
                                         labels_at_end=nodes[e.src].kind == "fork", lift=lift)
            ax.add_patch(FancyArrowPatch(path=curve, arrowstyle="-|>" if e.arrow else "-", mutation_scale=11,
                                         lw=1.0, color="black", shrinkA=0, shrinkB=0))
            ax.annotate(e.value, (lx, ly), xytext=(0, 2.5), textcoords="offset points", ha="center", va="bottom",
                        fontsize=FONT["edge"], color=VALUE_COLOR)
            ax.annotate(e.grad, (lx, ly), xytext=(0, -2.5), textcoords="offset points", ha="center", va="top",
                        fontsize=FONT["edge"], color=GRAD_COLOR)

        for key, node in nodes.items():
            x, y = pos[key]
            if node.kind == "gate":
                ax.add_patch(Circle((x, y), _radius(node.label), facecolor="white", edgecolor="black", lw=1.0,
                                    zorder=3))
                ax.text(x, y, node.label, ha="center", va="center", fontsize=FONT["gate"], zorder=4)
            elif node.kind == "fork":
                ax.add_patch(Circle((x, y), 0.045, color="black", zorder=3))
            else:
                ax.text(x, y, node.label, ha="center", va="center", fontsize=FONT[node.kind],
                        color="0.4" if node.kind == "constant" else "black")

        path = Path(path)
        fig.savefig(path, dpi=DPI, facecolor="white")
        plt.close(fig)
    return path
