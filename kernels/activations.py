"""Activation ops: y = f(x), the gradient through f, and f fused into the bias add of an affine layer.

What an activation computes is defined once, by its gate class (``gpunn/nn/activations.py``): ``f`` and
``df`` in ``xp`` code, which are these ops' references, and the same rules for one element, from which
:func:`activation_kernels` below makes each gate's kernels (through ``kernels/elementwise.py``'s
factory, when the class is defined). The ops take the gate itself: ``activation(x, gate)``.

Backward passes read what the gate saved: the output y where f' follows from it (ReLU family: its sign;
sigmoid: y (1 - y); tanh: 1 - y^2), the input x where it does not (GELU, SiLU). On the CPU, Numba calls
scalar libm ``tanh`` per element where NumPy's is SIMD, so a gate whose forward rule is a tanh
(``xp_forward_on_cpu``: sigmoid, tanh) runs its ``xp`` rule there (16M float32: 69 ms against 228 ms
for the kernel); its backward is a kernel.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, prange

from .checks import HALF, compute_dtype, contiguous, empty, flat, same_arrays
from .elementwise import family
from .launch import PARALLEL_MIN_SIZE, TILE_2D, clamped_blocks, configured, counters, finished_last, run
from .op import op


# --------------------------------------------------------------------------- the kernels, made per gate

@family
def activation_kernels(made) -> dict:
    """The gate alone (forward, backward) and the affine layer's epilogue (bias + f, and its backward)."""
    f, df, f_dev, df_dev = made.f, made.df, made.f_device, made.df_device

    def forward_cpu(x, out, k):
        """out[i] = f(x[i]) for flat arrays of one dtype."""
        for i in prange(x.size):
            out[i] = f(x[i], k)

    def backward_cpu(g, s, out, k):
        """out[i] = g[i] f'(x[i]) from the saved s[i] (y = f(x), or x)."""
        for i in prange(g.size):
            out[i] = df(g[i], s[i], k)

    def bias_forward_cpu(z, bias, out, keep_input, k):
        """out[r, c] = f(z[r, c] + bias[c]) in one pass; with ``keep_input``, z[r, c] becomes z + bias too."""
        rows, cols = z.shape
        for r in prange(rows):
            if keep_input:
                for c in range(cols):
                    t = z[r, c] + bias[c]
                    z[r, c] = t
                    out[r, c] = f(t, k)
            else:
                for c in range(cols):
                    out[r, c] = f(z[r, c] + bias[c], k)

    def bias_backward_cpu(g, s, dz, parts, k):
        """dz = g f'(x) and a column sum of dz per chunk of rows in one pass; db = parts.sum(axis=0)."""
        rows, cols = g.shape
        chunks = parts.shape[0]
        per = (rows + chunks - 1) // chunks
        for t in prange(chunks):
            acc = parts[t]
            for r in range(t * per, min(rows, (t + 1) * per)):
                for c in range(cols):
                    d = df(g[r, c], s[r, c], k)
                    dz[r, c] = d
                    acc[c] += d

    # The CUDA kernels widen each load (k.zero + x[i]): float16 arrays compute in float32 (k holds float32
    # numbers for them), float32 and float64 ones are unchanged by it.
    def forward_cuda(x, out, k):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, x.size, stride):
            out[i] = f_dev(k.zero + x[i], k)

    def backward_cuda(g, s, out, k):
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, g.size, stride):
            out[i] = df_dev(k.zero + g[i], k.zero + s[i], k)

    def bias_forward_cuda(z, bias, out, keep_input, k):
        """A 2-D grid-stride loop, x over columns (coalesced), y over rows: no integer division per element.

        ``while`` loops, not ``range``: a range with a variable step divides to count its trips, once per row.
        """
        c0, r0 = cuda.grid(2)
        cs, rs = cuda.gridsize(2)
        rows, cols = z.shape
        r = r0
        while r < rows:
            c = c0
            while c < cols:
                t = k.zero + z[r, c] + bias[c]
                if keep_input:
                    z[r, c] = t
                out[r, c] = f_dev(t, k)
                c += cs
            r += rs

    def bias_backward_cuda(g, s, dz, parts, db, done, k):
        """dz = g f'(x), and db = dz's column sums, in one launch.

        Thread (c, j) sums column c over rows j, j + J, j + 2J, ... (J: the grid's threads along y) into
        parts[j, c]; the last of column c's J threads to finish adds its J partial sums in order, so db
        does not depend on which thread ran when. The sums are in k's dtype (float32 for float16 arrays).
        """
        c0, j = cuda.grid(2)
        cs, chunks = cuda.gridsize(2)
        rows, cols = g.shape
        c = c0
        while c < cols:
            acc = k.zero
            r = j
            while r < rows:
                d = df_dev(k.zero + g[r, c], k.zero + s[r, c], k)
                dz[r, c] = d
                acc += d
                r += chunks
            parts[j, c] = acc
            if finished_last(done, c, chunks):
                acc = k.zero
                for i in range(chunks):
                    acc += parts[i, c]
                db[c] = acc
            c += cs

    return {"forward": made.both(forward_cpu, forward_cuda), "backward": made.both(backward_cpu, backward_cuda),
            "bias_forward": made.both(bias_forward_cpu, bias_forward_cuda),
            "bias_backward": made.both(bias_backward_cpu, bias_backward_cuda)}


# --------------------------------------------------------------------------- the ops

@op
def activation(x, gate):
    """y = f(x) elementwise, same shape and dtype as ``x``: the gate's ``f``.

    Parameters
    ----------
    x : array of any shape, float16, float32 or float64 (NumPy or CuPy)
        The input.
    gate : gpunn.nn.Activation
        The activation (``gn.nn.ReLU()`` ...): its ``f`` and ``df`` are the reference, its kernels the
        fused path.

    Returns
    -------
    array
        f(x), a new array of ``x``'s shape, dtype and device.

    Examples
    --------
    >>> x = np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32)
    >>> gn.ops.activation(x, gn.nn.ReLU())
    array([[0., 2.],
           [3., 0.]], dtype=float32)
    """
    return gate.f(x)


@op
def activation_backward(dout, saved, gate):
    """dx = dout * f'(x), from what the gate saved (y = f(x); x where ``gate.backward_from == "input"``).

    Parameters
    ----------
    dout : array, float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to y.
    saved : array of ``dout``'s shape and dtype
        What the forward pass saved: y, or x where ``gate.backward_from == "input"``.
    gate : gpunn.nn.Activation
        The activation (``gn.nn.ReLU()`` ...): its ``f`` and ``df`` are the reference, its kernels the
        fused path.

    Returns
    -------
    array
        dx, a new array of ``dout``'s shape and dtype.

    Examples
    --------
    >>> relu = gn.nn.ReLU()
    >>> y = gn.ops.activation(np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32), relu)
    >>> gn.ops.activation_backward(np.ones((2, 2), np.float32), y, relu)
    array([[0., 1.],
           [1., 0.]], dtype=float32)
    """
    return gate.df(dout, saved)


@op
def bias_activation(z, b, gate):
    """y = f(z + b) for z (N, M) and b (M,), the affine layer's epilogue.

    z holds z + b afterwards (what a gate that saves its input needs); y may be z itself where the gate
    saves its output (the GEMM's fresh output, reused).

    Parameters
    ----------
    z : array of shape (N, M), float16, float32 or float64 (NumPy or CuPy)
        The affine layer's product x W, overwritten (see above).
    b : array of shape (M,)
        The bias, of ``z``'s dtype and on its device.
    gate : gpunn.nn.Activation
        The activation (``gn.nn.ReLU()`` ...): its ``f`` and ``df`` are the reference, its kernels the
        fused path.

    Returns
    -------
    array of shape (N, M)
        f(z + b), in ``z``'s dtype: a new array, or ``z`` itself.

    Raises
    ------
    ValueError
        Where a kernel runs, if ``b`` is not of ``z``'s dtype or not of shape (M,) (the reference
        broadcasts and casts as NumPy's ``+=`` does).

    Examples
    --------
    >>> z = np.array([[-1.0, 2.0], [3.0, -4.0]], np.float32)
    >>> gn.ops.bias_activation(z, np.array([0.5, 5.0], np.float32), gn.nn.ReLU())
    array([[0. , 7. ],
           [3.5, 1. ]], dtype=float32)
    """
    z += b
    return gate.f(z)


@op
def bias_activation_backward(dout, saved, gate):
    """(dz, db) for y = f(z + b): dz = dout * f'(z + b), db = dz summed over the batch.

    Parameters
    ----------
    dout : array of shape (N, M), float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to y.
    saved : array of shape (N, M)
        What :func:`bias_activation` left: y, or z + b where ``gate.backward_from == "input"``.
    gate : gpunn.nn.Activation
        The activation (``gn.nn.ReLU()`` ...): its ``f`` and ``df`` are the reference, its kernels the
        fused path.

    Returns
    -------
    dz : array of shape (N, M)
        The gradient with respect to z (and z + b), in ``dout``'s dtype.
    db : array of shape (M,)
        The gradient with respect to b: dz's column sums.

    Examples
    --------
    >>> relu = gn.nn.ReLU()
    >>> y = np.array([[0.0, 7.0], [3.5, 1.0]], np.float32)
    >>> dz, db = gn.ops.bias_activation_backward(np.ones((2, 2), np.float32), y, relu)
    >>> db
    array([1., 2.], dtype=float32)
    """
    dz = gate.df(dout, saved)
    return dz, dz.sum(axis=0)


@activation.kernel("cpu")
def _activation_cpu(x, gate):
    if gate.xp_forward_on_cpu or x.dtype == HALF:  # (a NumPy float16 array: Numba's CPU target has no float16)
        return NotImplemented
    return _activation(x, gate)


@activation.kernel("cuda")
def _activation(x, gate):
    made = gate.kernels
    if made is None:
        return NotImplemented
    x = contiguous(x)
    out = empty(x, x.shape, same_arrays("activation", x))
    run(made.forward, x.size, flat(x), flat(out), gate.kernel_numbers(x.dtype))
    return out


@activation_backward.kernel("cpu", "cuda")
def _activation_backward(dout, saved, gate):
    made = gate.kernels
    if made is None or (dout.dtype == HALF and type(dout) is np.ndarray):  # inline cpu_half: a call per step
        return NotImplemented
    dout, saved = contiguous(dout), contiguous(saved)
    out = empty(dout, dout.shape, same_arrays("activation_backward", dout, saved=saved))
    run(made.backward, dout.size, flat(dout), flat(saved), flat(out), gate.kernel_numbers(dout.dtype))
    return out


def _bias(z, b):
    """b, checked to be z's dtype and as long as z's rows."""
    dt = same_arrays("bias_activation", z)
    b = contiguous(b)
    if b.shape != (z.shape[1],) or b.dtype != dt:
        raise ValueError(f"bias_activation: b must be {dt} of shape ({z.shape[1]},), got {b.dtype} {tuple(b.shape)}")
    return b


@bias_activation.kernel("cpu")
def _bias_activation_cpu(z, b, gate):
    if z.dtype == HALF:
        return NotImplemented
    if gate.xp_forward_on_cpu and z.ndim == 2:
        z += _bias(z, b)
        return gate.f(z)
    return _bias_activation(z, b, gate)


@bias_activation.kernel("cuda")
def _bias_activation(z, b, gate):
    made = gate.kernels
    if made is None or z.ndim != 2 or not z.flags.c_contiguous:
        return NotImplemented
    b, dt = _bias(z, b), z.dtype
    keep = gate.backward_from == "input"
    out = empty(z, z.shape, dt) if keep else z  # in place: z is the GEMM's fresh output
    run(made.bias_forward, z.size, z, b, out, keep, gate.kernel_numbers(dt), grid=z.shape)
    return out


@bias_activation_backward.kernel("cpu")
def _bias_activation_backward_cpu(dout, saved, gate):
    made = gate.kernels
    if made is None or dout.ndim != 2 or dout.dtype == HALF:
        return NotImplemented
    dout, saved = contiguous(dout), contiguous(saved)
    dt = same_arrays("bias_activation_backward", dout, saved=saved)
    dz = np.empty_like(dout)
    k = gate.kernel_numbers(dt)
    if dout.size < PARALLEL_MIN_SIZE:
        parts = np.zeros((1, dout.shape[1]), dt)
        made.bias_backward.cpu(dout, saved, dz, parts, k)
        return dz, parts[0]
    parts = np.zeros((min(numba_threads(), dout.shape[0]), dout.shape[1]), dt)  # one partial sum per thread
    run(made.bias_backward, dout.size, dout, saved, dz, parts, k)
    return dz, parts.sum(axis=0)


@bias_activation_backward.kernel("cuda")
def _bias_activation_backward_cuda(dout, saved, gate):
    made = gate.kernels
    if made is None or dout.ndim != 2:
        return NotImplemented
    dout, saved = contiguous(dout), contiguous(saved)
    dt = same_arrays("bias_activation_backward", dout, saved=saved)
    rows, cols = dout.shape
    # about 8 rows per thread along y (at most 64 blocks there): enough threads, and few partial sums per column
    blocks = clamped_blocks(cols, TILE_2D[0]), clamped_blocks(rows, 8 * TILE_2D[1], cap=64)
    dz, db = empty(dout, dout.shape, dt), empty(dout, (cols,), dt)
    parts = empty(dout, (blocks[1] * TILE_2D[1], cols), compute_dtype(dt))  # float32 sums for float16
    configured(made.bias_backward.cuda, blocks, TILE_2D)(dout, saved, dz, parts, db, counters(dout, cols),
                                                         gate.kernel_numbers(dt))
    return dz, db


def numba_threads() -> int:
    import numba

    return numba.config.NUMBA_NUM_THREADS
