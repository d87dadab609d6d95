"""The convolution's epilogue: bias, activation and the move from the GEMM's layout to NCHW, in one pass.

The im2col GEMM gives z (F, N P), channels first; the layer's output is (N, F, P). The epilogue adds
the bias and applies the activation on the way (a gate whose backward reads its output; the layer runs
one that reads its input as a gate of its own); its backward gives dz (F, N P) for the GEMMs and the
bias gradient. Like every fused gate kernel, these are made per gate from its scalar rules
(:func:`epilogue_kernels`, by ``kernels/elementwise.py``'s factory). The CPU kernels copy whole rows
through 1-D views; the CUDA kernels run on 3-D grids (pixels, images, channels).
"""

from __future__ import annotations

from numba import cuda, prange

from .arrays import array_module
from .checks import contiguous, cpu_half, empty, into, out_array, same_arrays
from .elementwise import family
from .launch import run
from .op import op


def _output_based(op_name: str, gate) -> None:
    if gate.backward_from != "output":
        raise ValueError(f"{op_name}: the epilogue's backward reads the activation's output; {gate!r} needs its "
                         "input (run it as its own gate)")


@op
def conv_bias_activation(z, b, out, gate):
    """out (N, F, P) = f(z + b) for the GEMM's output z (F, N P); returns ``out``. ``b`` is (F,) or None.

    The convolution's epilogue: bias, activation and the layout change from channels first (F, N P) to
    images first (N, F, P) in one pass. Only for gates whose backward reads their output.

    Parameters
    ----------
    z : array of shape (F, N P), float16, float32 or float64 (NumPy or CuPy)
        The convolution's GEMM output: F filters by N images of P = Ho Wo pixels.
    b : array of shape (F,) or None
        The bias, of ``z``'s dtype and on its device; None: no bias.
    out : array of shape (N, F, P)
        Where the result goes, of ``z``'s dtype and on its device (C-contiguous where a kernel runs).
    gate : gpunn.nn.Activation
        The activation, one with ``backward_from == "output"`` (``gn.nn.Identity()`` for none).

    Returns
    -------
    array of shape (N, F, P)
        ``out``, holding f(z + b).

    Raises
    ------
    ValueError
        If the gate's backward reads its input (``backward_from == "input"``); where a kernel runs, also
        if ``b`` or ``out`` does not fit ``z``.

    Examples
    --------
    >>> z = np.array([[-1.0, 2.0, 3.0, -4.0]], np.float32)       # 1 filter, 2 images of 2 pixels
    >>> out = np.empty((2, 1, 2), np.float32)
    >>> gn.ops.conv_bias_activation(z, np.array([0.5], np.float32), out, gn.nn.ReLU())
    array([[[0. , 2.5]],
    <BLANKLINE>
           [[3.5, 0. ]]], dtype=float32)
    """
    _output_based("conv_bias_activation", gate)
    f, n = z.shape[0], out.shape[0]
    z3 = z.reshape(f, n, -1)
    if b is not None:
        z3 = z3 + b[:, None, None]
    out[...] = gate.f(z3).transpose(1, 0, 2)
    return out


@op
def conv_bias_activation_backward(dout, y, gate, out=None):
    """(dz (F, N P), db (F,)) for y = f(z + b) laid out (N, F, P): dz = dout f'(z + b), channels first.

    Parameters
    ----------
    dout : array of shape (N, F, P), float16, float32 or float64 (NumPy or CuPy)
        The gradient of the loss with respect to the epilogue's output.
    y : array of shape (N, F, P)
        The saved output f(z + b) (ignored by the identity gate).
    gate : gpunn.nn.Activation
        The activation, one with ``backward_from == "output"``.
    out : array of shape (F, N P) or None, default=None
        A C-contiguous array of ``dout``'s dtype for dz; None: a new one.

    Returns
    -------
    dz : array of shape (F, N P)
        The gradient with respect to z, channels first as the GEMM laid z out (``out`` where given).
    db : array of shape (F,)
        The gradient with respect to b: dz summed over images and pixels.

    Raises
    ------
    ValueError
        If the gate's backward reads its input (``backward_from == "input"``), or ``out`` does not fit.

    Examples
    --------
    >>> y = np.array([[[0.0, 2.5]], [[3.5, 0.0]]], np.float32)
    >>> dz, db = gn.ops.conv_bias_activation_backward(np.ones_like(y), y, gn.nn.ReLU())
    >>> dz, db
    (array([[0., 1., 1., 0.]], dtype=float32), array([2.], dtype=float32))
    """
    _output_based("conv_bias_activation_backward", gate)
    xp = array_module(dout)
    n, f, _ = dout.shape
    d = gate.df(dout, y)
    return into(out, xp.ascontiguousarray(d.transpose(1, 0, 2)).reshape(f, -1)), d.sum(axis=(0, 2))


# --------------------------------------------------------------------------- the kernels, made per gate

@family
def epilogue_kernels(made) -> dict:
    """The epilogue forward and backward for a gate whose backward reads its output (none for the others)."""
    if made.backward_from != "output":
        return {}
    f, df, f_dev, df_dev = made.f, made.df, made.f_device, made.df_device

    def epilogue_cpu(z, bias, out, has_bias, k):
        """out[n, f, p] = f(z[f, n P + p] + bias[f]): bias, activation and the move to NCHW in one pass.

        Each task copies one image's row of z into one (image, channel) plane through 1-D views, a loop
        that vectorises: written with 3-D indexing, the ReLU epilogue took 9.4 ms for 64 x 64 planes of
        32x32 float32 on one thread; so, 0.9 ms.
        """
        n, nf, plane = out.shape
        for t in prange(n * nf):
            img, ch = t // nf, t % nf
            src, dst = z[ch, img * plane:(img + 1) * plane], out[img, ch]
            add = bias[ch] if has_bias else k.zero
            for p in range(plane):
                dst[p] = f(src[p] + add, k)

    def epilogue_backward_cpu(g, y, dz, db, k):
        """dz[f, n P + p] = g[n, f, p] f'(y[n, f, p]) and db[f] = sum of dz[f], one channel per task."""
        n, nf, plane = g.shape
        for ch in prange(nf):
            acc = k.zero
            for img in range(n):
                gr, yr, d = g[img, ch], y[img, ch], dz[ch, img * plane:(img + 1) * plane]
                for p in range(plane):
                    d[p] = df(gr[p], yr[p], k)
                for p in range(plane):
                    acc += d[p]
            db[ch] = acc

    def epilogue_cuda(z, bias, out, has_bias, k):
        """out[img, ch, p] = f(z[ch, img P + p] + bias[ch]): x over p, y over images, z over channels."""
        n, nf, plane = out.shape
        x0, y0, z0 = cuda.grid(3)
        xs, ys, zs = cuda.gridsize(3)
        ch = z0
        while ch < nf:
            add = bias[ch] if has_bias else k.zero
            img = y0
            while img < n:
                p = x0
                while p < plane:  # the load widened: float16 arrays compute in float32 (k's dtype)
                    out[img, ch, p] = f_dev(k.zero + z[ch, img * plane + p] + add, k)
                    p += xs
                img += ys
            ch += zs

    def epilogue_backward_cuda(g, y, dz, db, k):
        """dz[ch, img P + p] = g f'(y) at [img, ch, p] (``db`` is unused: the binding sums dz's rows with CuPy)."""
        n, nf, plane = g.shape
        x0, y0, z0 = cuda.grid(3)
        xs, ys, zs = cuda.gridsize(3)
        ch = z0
        while ch < nf:
            img = y0
            while img < n:
                p = x0
                while p < plane:
                    dz[ch, img * plane + p] = df_dev(k.zero + g[img, ch, p], k.zero + y[img, ch, p], k)
                    p += xs
                img += ys
            ch += zs

    # reassoc lets the bias gradient's sum vectorise (4x faster: 2.8 ms against 11.1 ms for the shapes above);
    # it changes only the order of that sum, as any parallel reduction does
    return {"epilogue": made.both(epilogue_cpu, epilogue_cuda),
            "epilogue_backward": made.both(epilogue_backward_cpu, epilogue_backward_cuda,
                                           fastmath={"reassoc", "nsz"})}


@conv_bias_activation.kernel("cpu")
def _conv_bias_activation_cpu(z, b, out, gate):
    if gate.xp_forward_on_cpu or cpu_half(z):
        return NotImplemented  # the reference runs NumPy's SIMD tanh (or NumPy's float16)
    return _conv_bias_activation(z, b, out, gate)


@conv_bias_activation.kernel("cuda")
def _conv_bias_activation(z, b, out, gate):
    _output_based("conv_bias_activation", gate)
    made = gate.kernels
    if made is None:
        return NotImplemented
    z = contiguous(z)
    dt = same_arrays("conv_bias_activation", z)
    n, f, plane = out.shape
    if z.shape != (f, n * plane) or out.dtype != dt or not out.flags.c_contiguous:
        raise ValueError(f"conv_bias_activation: out must be C-contiguous {dt} (N, F, P) for z (F, N P); "
                         f"got out {out.dtype} {tuple(out.shape)} and z {tuple(z.shape)}")
    has_bias = b is not None
    bias = contiguous(b) if has_bias else z[:, 0]  # any F values of the dtype stand in for a missing b
    if bias.shape != (f,) or bias.dtype != dt:
        raise ValueError(f"conv_bias_activation: b must be {dt} of shape ({f},), got {bias.dtype} {tuple(bias.shape)}")
    run(made.epilogue, out.size, z, bias, out, has_bias, gate.kernel_numbers(dt), grid=(f, n, plane))
    return out


@conv_bias_activation_backward.kernel("cpu")
def _conv_bias_activation_backward(dout, y, gate, out=None):
    _output_based("conv_bias_activation_backward", gate)
    made = gate.kernels
    if made is None or cpu_half(dout):
        return NotImplemented
    dout = contiguous(dout)
    y = dout if y is None else contiguous(y)  # the identity gate reads no y
    dt = same_arrays("conv_bias_activation_backward", dout, y=y)
    n, f, plane = dout.shape
    dz, db = out_array(out, dout, (f, n * plane), dt, "conv_bias_activation_backward"), empty(dout, (f,), dt)
    run(made.epilogue_backward, dout.size, dout, y, dz, db, gate.kernel_numbers(dt), grid=(f, n, plane))
    return dz, db


@conv_bias_activation_backward.kernel("cuda")
def _conv_bias_activation_backward_cuda(dout, y, gate, out=None):
    got = _conv_bias_activation_backward(dout, y, gate, out)
    if got is NotImplemented:
        return NotImplemented
    # the CUDA kernel leaves db: CuPy's row reduction spreads over the whole GPU (and sums float16 in float32)
    return got[0], got[0].sum(axis=1)
