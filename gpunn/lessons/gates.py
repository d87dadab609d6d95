"""Backprop on a graph of gates: the two worked examples drawn with values and gradients.

f = (x + y) z at x=-2, y=5, z=-4, and the neuron sigmoid(a x + b y + c) at a=1, b=2, c=-3,
x=-1, y=3, once with a sigmoid gate and once with the sigmoid spelled out as gates
(1 / (1 + e^-s)): the same gradients, gate by gate. Drawn as SVG and PNG by Graphviz where its ``dot``
program is installed, else by matplotlib (:func:`gpunn.autograd.draw`).
"""

from __future__ import annotations

from pathlib import Path

from .. import autograd as ag


def worked_examples(device="cpu"):
    """The three expressions, forward and backward done: {name: (output tensor, {input name: tensor})}."""
    x, y, z = (ag.tensor(v, device=device, dtype="float64", name=n) for v, n in ((-2.0, "x"), (5.0, "y"), (-4.0, "z")))
    f = (x + y) * z
    f.name = "f"
    f.backward()
    out = {"add_multiply": (f, {"x": x, "y": y, "z": z})}
    for kind in ("neuron", "neuron_expanded"):
        a, b, c, x, y = (ag.tensor(v, device=device, dtype="float64", name=n)
                         for v, n in zip((1.0, 2.0, -3.0, -1.0, 3.0), "abcxy"))
        s = a * x + b * y + c
        f = ag.sigmoid(s) if kind == "neuron" else 1.0 / (1.0 + ag.exp(-s))
        f.name = "f"
        f.backward()
        out[kind] = (f, {"a": a, "b": b, "c": c, "x": x, "y": y})
    return out


TITLES = {
    "add_multiply": "f = (x + y) z: add distributes, multiply switches",
    "neuron": "f = sigmoid(a x + b y + c): local gradient f (1 - f) = 0.105",
    "neuron_expanded": "the same neuron, sigmoid as gates: 1 / (1 + exp(-s))",
}


def run(out_dir, device="auto", data_dir=None, seed=0) -> dict:
    """Compute the three worked examples forward and backward and draw each graph (SVG and PNG).

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder for the figures (created by :func:`gpunn.lessons.run`).
    device : str or Device, default="auto"
        Where the lesson computes.
    data_dir : str or pathlib.Path, default=None
        Not read: the examples are numbers from the lecture.
    seed : int, default=0
        The lesson's random numbers.

    Returns
    -------
    dict
        ``files`` (the pictures written), ``summary`` (the numbers behind them, a few lines) and
        ``values``: each example's output and its inputs' gradients.
    """
    from ..devices import device as make_device

    dev = make_device(device)
    examples = worked_examples(dev)
    files, numbers, lines = [], {}, []
    for key, (f, inputs) in examples.items():
        drawn = ag.draw(f, Path(out_dir) / f"gates_{key}.svg", title=TITLES[key])
        files.append(drawn)
        if drawn.suffix == ".svg":  # a renderer is there: a PNG too, as the other lessons write
            files.append(ag.draw(f, Path(out_dir) / f"gates_{key}.png", title=TITLES[key]))
        numbers[key] = {"f": float(f.data), **{n: float(t.grad) for n, t in inputs.items()}}
        grads = ", ".join(f"d{n}={float(t.grad):.3f}" for n, t in inputs.items())
        lines.append(f"{key:16s} f={float(f.data):.4f}  {grads}")
    return {"files": files, "summary": "\n".join(lines), "values": numbers}
