"""Autograd: expressions built of gates, differentiated gate by gate (the cs231n computational graph).

    from gpunn import autograd as ag
    x, y, z = ag.tensor(-2.0, name="x"), ag.tensor(5.0, name="y"), ag.tensor(-4.0, name="z")
    f = (x + y) * z          # f.data == -12
    f.backward()             # x.grad == -4, y.grad == -4, z.grad == 3
    ag.draw(f, "graph.svg")  # every edge with its value (above) and gradient (below)

Files: ``core.py`` (Tensor, Gate, backward, ``sum_to``, ``no_grad``), ``gates.py`` (every
gate and its local rule), ``jacobian.py``, ``draw.py`` (the picture: Graphviz, or ``draw_matplotlib.py``).

Each gate is a small class: ``forward`` computes its output from its input arrays and keeps
what its local gradient needs; ``backward`` turns the upstream gradient into one gradient
per input, upstream times local. Calling a gate records its inputs, a weak reference to
its output (so the graph holds no reference cycle) and a generation number, one more than
its newest input's. ``Tensor.backward`` visits the gates newest generation first, so a
tensor's gradient is complete (its branches summed) before it flows further back. Gates
see plain ``xp`` arrays, NumPy or CuPy alike, and never ask which.

Broadcasting is undone in one place, :func:`sum_to`: the gradient of an input that was
broadcast is the sum over its copies. ``with ag.no_grad():`` computes without recording.
"""

from .core import Gate, Tensor, no_grad, sum_to, tensor
from .draw import draw, to_dot
from .gates import exp, log, maximum, relu, sigmoid, tanh
from .jacobian import jacobian, numerical_jacobian

__all__ = [
    "Tensor", "Gate", "tensor", "no_grad", "sum_to", "exp", "log", "maximum", "relu", "sigmoid", "tanh",
    "jacobian", "numerical_jacobian", "to_dot", "draw",
]
