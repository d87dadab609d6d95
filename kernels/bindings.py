"""Bindings: the kernels behind :mod:`gpunn.ops`'s signatures, for one target (CPU or CUDA).

A binding checks its arguments (same shape, one float dtype, contiguous; a clear
``ValueError`` naming the op and the argument otherwise), allocates outputs in the
arrays' own namespace, casts scalars to the arrays' dtype and launches the kernel:
the CPU ``njit`` function directly, the CUDA kernel on CuPy's current stream.
Arrays below a size threshold go to the reference instead, where that is faster.

The rule is measured speed (bench/test_kernels.py). On the CPU, Numba calls scalar
libm ``tanh`` per element while NumPy's is SIMD, so the sigmoid and tanh *forward*
passes run NumPy's ``tanh`` in place on one buffer (16M float32: 69 ms vs 228 ms for
the kernel); their backward passes, and everything else, use the fused kernels.
"""

from __future__ import annotations

import contextlib
import math

import numba
import numpy as np

from gpunn.devices import array_module, device_of
from gpunn import ops as hyper_of  # the *_hyper functions: one definition of each rule's kernel scalars
from gpunn.ops import dropout_threshold, pooled_size, winograd_buffer, winograd_tiles

from . import activations as act
from . import blas_pool
from . import conv
from . import conv_direct
from . import dropout as drop
from . import optimizers as opt
from . import winograd

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
THREADS = 256
MAX_BLOCKS = 65535
# CPU kernels run in the calling thread below this many elements. Right after a BLAS call
# NumPy's OpenBLAS threads keep spinning, and waking Numba's own pool beside them costs
# milliseconds (measured: ReLU forward + backward on 262K float32 after a GEMM, 1.3 ms on
# 2 threads vs 0.37 ms on 1; on 16M, 40 ms vs 25 ms). Training calls its kernels between GEMMs.
PARALLEL_MIN_SIZE = 1 << 25


class Target:
    """Where kernels run: ``Target("cpu")`` or ``Target("cuda")``."""

    def __init__(self, name: str):
        self.name = name
        self._streams = {}

    def run(self, kernel, n: int, *args) -> None:
        """Launch ``kernel`` over ``n`` elements (CUDA: a grid-stride launch on CuPy's current stream)."""
        if self.name == "cpu":
            with cpu_threads(n):
                kernel(*args)
            return
        blocks = max(1, min(MAX_BLOCKS, math.ceil(n / THREADS)))
        kernel[blocks, THREADS, self._stream()](*args)

    def run_2d(self, kernel, rows: int, cols: int, *args) -> None:
        """Launch a 2-D grid-stride CUDA ``kernel`` over a (rows, cols) array: 32 x 8 threads, x along columns."""
        blocks = (max(1, min(MAX_BLOCKS, math.ceil(cols / 32))), max(1, min(MAX_BLOCKS, math.ceil(rows / 8))))
        kernel[blocks, (32, 8), self._stream()](*args)

    def _stream(self):
        from numba import cuda

        if numba.config.ENABLE_CUDASIM:  # Numba's CUDA simulator (the tests): NumPy arrays, no CuPy stream
            return cuda.stream()
        import cupy

        ptr = cupy.cuda.get_current_stream().ptr
        if ptr not in self._streams:
            self._streams[ptr] = cuda.external_stream(ptr) if ptr else cuda.default_stream()
        return self._streams[ptr]

    def kernel(self, module, name: str):
        return getattr(module, f"{name}_{self.name}")


@contextlib.contextmanager
def cpu_threads(n: int):
    """Numba's thread count for a kernel over ``n`` elements: 1 below PARALLEL_MIN_SIZE, all above."""
    previous = numba.get_num_threads()
    wanted = numba.config.NUMBA_NUM_THREADS if n >= PARALLEL_MIN_SIZE else 1
    if wanted == previous:  # the usual case in a training loop: no thread-pool calls at all
        yield wanted
    else:
        numba.set_num_threads(wanted)
        try:
            yield wanted
        finally:
            numba.set_num_threads(previous)
    if wanted > 1:  # noted once the kernel is done (a first call compiles first): GEMMs soon after share the pool
        blas_pool.parallel_kernel_ran()


def _check(op: str, first, **others):
    """All arrays of ``first``'s shape and float dtype, C-contiguous; returns ``first``'s dtype."""
    arrays = {"x": first, **others}
    dt = first.dtype
    if dt not in FLOATS:
        raise ValueError(f"{op}: arrays must be float32 or float64, got {dt}")
    home = device_of(first)
    for name, a in arrays.items():
        if not isinstance(a, array_module(a).ndarray):
            raise ValueError(f"{op}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
        if device_of(a) != home:
            raise ValueError(f"{op}: {name} is on {device_of(a)} but x is on {home}: "
                             "all arrays of one call must share a device")
        if a.shape != first.shape:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}, expected {tuple(first.shape)}")
        if a.dtype != dt:
            raise ValueError(f"{op}: {name} has dtype {a.dtype}, expected {dt}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: {name} must be C-contiguous (use xp.ascontiguousarray)")
    return dt


def _activation_args(kind: str, alpha: float, dt) -> tuple:
    """The activation kernels' trailing arguments: the kind's code, then alpha, 0 and 1/2 in dtype ``dt``."""
    return act.CODES[kind], dt.type(alpha), dt.type(0), dt.type(0.5)


def _flat(a):
    return a.reshape(-1)


def _contiguous(a):
    """Inputs may arrive as strided views: one copy makes them contiguous (outputs are always ours)."""
    return a if a.flags.c_contiguous else array_module(a).ascontiguousarray(a)


SIMD_TANH_KINDS = ("sigmoid", "tanh")


def simd_tanh_forward(z, kind: str, out=None):
    """sigmoid or tanh of ``z`` with NumPy's SIMD tanh, in place on ``out`` (a new array by default)."""
    half = z.dtype.type(0.5)
    if kind == "tanh":
        return np.tanh(z, out=out)
    y = np.multiply(z, half, out=out)  # sigmoid(z) = tanh(z / 2) / 2 + 1/2, each step in place
    np.tanh(y, out=y)
    y *= half
    y += half
    return y


def make_bindings(target: Target, references: dict, min_size: int = 0) -> dict:
    """{op name: binding} for ``target``; arrays with fewer than ``min_size`` elements use ``references``."""
    host_tanh = SIMD_TANH_KINDS if target.name == "cpu" else ()

    def small(a) -> bool:
        return a.size < min_size

    def activation(x, kind, alpha=0.0):
        if small(x) or kind == "identity":
            return references["activation"](x, kind, alpha)
        if kind in host_tanh:
            return simd_tanh_forward(x, kind)
        x = _contiguous(x)
        dt = _check("activation", x)
        out = _empty_like(x)
        target.run(target.kernel(act, "forward"), x.size, _flat(x), _flat(out), *_activation_args(kind, alpha, dt))
        return out

    def activation_backward(dout, y, kind, alpha=0.0):
        if small(dout) or kind == "identity":
            return references["activation_backward"](dout, y, kind, alpha)
        dout, y = _contiguous(dout), _contiguous(y)
        dt = _check("activation_backward", dout, y=y)
        out = _empty_like(dout)
        target.run(target.kernel(act, "backward"), dout.size, _flat(dout), _flat(y), _flat(out),
                   *_activation_args(kind, alpha, dt))
        return out

    def bias_activation(z, b, kind, alpha=0.0):
        if small(z) or z.ndim != 2:
            return references["bias_activation"](z, b, kind, alpha)
        z, b = _contiguous(z), _contiguous(b)
        dt = _check("bias_activation", z)
        if b.shape != (z.shape[1],) or b.dtype != dt:
            raise ValueError(f"bias_activation: b must be {dt} of shape ({z.shape[1]},), got {b.dtype} {tuple(b.shape)}")
        if kind in host_tanh:
            z += b
            return simd_tanh_forward(z, kind, out=z)
        # in place: z is the GEMM's fresh output
        if target.name == "cpu":
            target.run(act.bias_forward_cpu, z.size, z, b, z, *_activation_args(kind, alpha, dt))
        else:
            target.run_2d(act.bias_forward_cuda, z.shape[0], z.shape[1], z, b, z, *_activation_args(kind, alpha, dt))
        return z

    def bias_activation_backward(dout, y, kind, alpha=0.0):
        if small(dout) or dout.ndim != 2:
            return references["bias_activation_backward"](dout, y, kind, alpha)
        dout, y = _contiguous(dout), _contiguous(y)
        dt = _check("bias_activation_backward", dout, y=y)
        dz = _empty_like(dout)
        scalars = _activation_args(kind, alpha, dt)
        if target.name == "cpu":
            with cpu_threads(dout.size) as threads:
                parts = np.zeros((min(threads, dout.shape[0]), dout.shape[1]), dt)  # one partial sum per thread
                act.bias_backward_cpu(dout, y, dz, parts, *scalars)
            return dz, parts.sum(axis=0)
        target.run(act.backward_cuda, dout.size, _flat(dout), _flat(y), _flat(dz), *scalars)
        return dz, dz.sum(axis=0)  # CuPy's row reduction spreads over the whole GPU

    def dropout_forward(x, p, seed, offset=0, draw=None):
        if small(x):
            return references["dropout_forward"](x, p, seed, offset)
        x = _contiguous(x)
        dt = _check("dropout_forward", x)
        if draw is None:
            draw = array_module(x).asarray(np.array([seed, offset], np.uint64))
        _argument_array(draw, x, "dropout_forward: draw", "a uint64 array [seed, offset]",
                        lambda a: a.dtype == np.uint64 and a.shape == (2,))
        out, mask = _empty_like(x), _empty_like(x)
        target.run(target.kernel(drop, "dropout"), x.size, _flat(x), _flat(out), _flat(mask), draw,
                   np.uint64(dropout_threshold(p)), dt.type(1.0 / (1.0 - p)), dt.type(0))
        return out, mask

    def sgd_step(w, g, buf, lr, momentum=0.0, nesterov=False, weight_decay=0.0, skip=None, hyper=None):
        if small(w):
            return references["sgd_step"](w, g, buf, lr, momentum, nesterov, weight_decay, skip=skip)
        h = _hyper(hyper, w, hyper_of.sgd_hyper(lr, momentum, weight_decay), "sgd_step")
        if momentum == 0:
            _check("sgd_step", w, g=g)
            target.run(target.kernel(opt, "sgd_plain"), w.size, _flat(w), _flat(g), h, _skip_flag(skip, w))
            return
        _check("sgd_step", w, g=g, buf=buf)
        target.run(target.kernel(opt, "sgd"), w.size, _flat(w), _flat(g), _flat(buf), h, bool(nesterov),
                   _skip_flag(skip, w))

    def adagrad_step(w, g, sum_sq, lr, eps=1e-10, weight_decay=0.0, skip=None, hyper=None):
        if small(w):
            return references["adagrad_step"](w, g, sum_sq, lr, eps, weight_decay, skip=skip)
        _check("adagrad_step", w, g=g, sum_sq=sum_sq)
        h = _hyper(hyper, w, hyper_of.adagrad_hyper(lr, eps, weight_decay), "adagrad_step")
        target.run(target.kernel(opt, "adagrad"), w.size, _flat(w), _flat(g), _flat(sum_sq), h, _skip_flag(skip, w))

    def rmsprop_step(w, g, sq_avg, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, skip=None, hyper=None):
        if small(w):
            return references["rmsprop_step"](w, g, sq_avg, lr, alpha, eps, weight_decay, skip=skip)
        _check("rmsprop_step", w, g=g, sq_avg=sq_avg)
        h = _hyper(hyper, w, hyper_of.rmsprop_hyper(lr, alpha, eps, weight_decay), "rmsprop_step")
        target.run(target.kernel(opt, "rmsprop"), w.size, _flat(w), _flat(g), _flat(sq_avg), h, _skip_flag(skip, w))

    def adam_step(w, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0, decoupled=False, skip=None, hyper=None):
        if small(w):
            return references["adam_step"](w, g, m, v, lr, beta1, beta2, eps, t, weight_decay, decoupled, skip=skip)
        _check("adam_step", w, g=g, m=m, v=v)
        h = _hyper(hyper, w, hyper_of.adam_hyper(lr, beta1, beta2, eps, t, weight_decay, decoupled), "adam_step")
        target.run(target.kernel(opt, "adam"), w.size, _flat(w), _flat(g), _flat(m), _flat(v), h, _skip_flag(skip, w))

    bindings = {
        "activation": activation, "activation_backward": activation_backward, "bias_activation": bias_activation,
        "bias_activation_backward": bias_activation_backward, "dropout_forward": dropout_forward,
        "sgd_step": sgd_step, "adagrad_step": adagrad_step, "rmsprop_step": rmsprop_step, "adam_step": adam_step,
    }
    bindings.update(conv_bindings(target, references, min_size))
    bindings.update(winograd_bindings(target, references, min_size))
    if target.name == "cpu":  # the direct convolution has CPU kernels only (SIMD through kernels/simd.py)
        bindings.update(direct_conv_bindings(target, references, min_size))
        bindings["matmul"] = shared_pool_matmul
    for name, fn in bindings.items():  # readable in gn.ops.active_kernels() and tracebacks
        fn.__module__, fn.__qualname__ = "gpunn.kernels", f"{name}[{target.name}]"
    return bindings


def _bias_epilogue(op: str, launch, b, placeholder, out, kind: str, alpha: float, host_tanh):
    """out = f(GEMM product + b) by ``launch(bias, has_bias, *activation args)``, b checked against ``out``'s
    (N, F, ...) channels; ``placeholder`` (F values of out's dtype) stands in for a missing b. Kinds in
    ``host_tanh`` run the kernel as identity, then NumPy's SIMD tanh in place (see the module docstring)."""
    f, dt = out.shape[1], out.dtype
    has_bias = b is not None
    bias = _contiguous(b) if has_bias else placeholder
    if bias.shape != (f,) or bias.dtype != dt:
        raise ValueError(f"{op}: b must be {dt} of shape ({f},), got {bias.dtype} {tuple(bias.shape)}")
    if kind in host_tanh:
        launch(bias, has_bias, *_activation_args("identity", 0.0, dt))
        return simd_tanh_forward(out, kind, out=out)
    launch(bias, has_bias, *_activation_args(kind, alpha, dt))
    return out


def shared_pool_matmul(a, b, out=None):
    """NumPy's matmul; while parallel Numba kernels run nearby, on Numba's threads (kernels/blas_pool.py).

    Either way OpenBLAS runs the same jobs: the result is the same bit for bit.
    """
    if not blas_pool.numba_busy():
        return np.matmul(a, b, out=out)
    with blas_pool.shared_threads():
        return np.matmul(a, b, out=out)


def _empty_like(a):
    return array_module(a).empty_like(a)


def _argument_array(a, x, name: str, wanted: str, fits):
    """``a``, a small array a kernel reads (a flag, the step's scalars), checked: ``fits(a)`` and on x's device."""
    if not isinstance(a, array_module(a).ndarray) or not fits(a):
        raise ValueError(f"{name} must be {wanted}, got {a!r}")
    if device_of(a) != device_of(x):
        raise ValueError(f"{name} is on {device_of(a)} but the arrays it goes with are on {device_of(x)}: "
                         "it must live beside them")
    return a


def _hyper(hyper, w, values: tuple, op: str):
    """The step's scalars the kernel reads: the caller's device array (checked), or one made from ``values``."""
    if hyper is None:
        return array_module(w).asarray(np.array(values, dtype=w.dtype))
    return _argument_array(hyper, w, f"{op}: hyper", f"a {w.dtype} array of shape ({len(values)},)",
                           lambda a: a.dtype == w.dtype and a.shape == (len(values),))


_NO_SKIP = {}  # device -> a 1-element int64 zero array on it, for updates called without a skip flag


def _skip_flag(skip, w):
    """The skip flag a kernel reads: the caller's int64 array (checked), or a shared zero on w's device."""
    home = device_of(w)
    if skip is None:
        if home not in _NO_SKIP:
            _NO_SKIP[home] = array_module(w).zeros(1, np.int64)
        return _NO_SKIP[home]
    return _argument_array(skip, w, "skip", "a 1-D int64 array (skip[0] != 0 skips the update)",
                           lambda a: a.dtype == np.int64 and a.ndim == 1 and a.size >= 1)


def conv_bindings(target: Target, references: dict, min_size: int = 0) -> dict:
    """{op name: binding} for the convolution and pooling ops (kernels/conv.py) on ``target``.

    Sizes are judged by the larger array an op writes or reads (the columns, the image).
    """
    host_tanh = SIMD_TANH_KINDS if target.name == "cpu" else ()

    def run(name, size, *args):
        target.run(target.kernel(conv, name), size, *args)

    def im2col(x, kernel, stride, padding, out=None):
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        n, c, h, w = x.shape
        ho, wo = pooled_size(h, kh, sh, ph), pooled_size(w, kw, sw, pw)
        if n * c * kh * kw * ho * wo < min_size:
            return references["im2col"](x, kernel, stride, padding, out)
        x = _contiguous(x)
        dt = _check("im2col", x)
        cols = _out(out, x, (c * kh * kw, n * ho * wo), dt, "im2col")
        run("im2col", cols.size, x, cols, kh, kw, sh, sw, ph, pw, ho, wo, dt.type(0))
        return cols

    def col2im(cols, x_shape, kernel, stride, padding, out=None):
        if cols.size < min_size:
            return references["col2im"](cols, x_shape, kernel, stride, padding, out)
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        n, c, h, w = x_shape
        ho, wo = pooled_size(h, kh, sh, ph), pooled_size(w, kw, sw, pw)
        cols = _contiguous(cols)
        dt = _check("col2im", cols)
        if cols.shape != (c * kh * kw, n * ho * wo):
            raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected {(c * kh * kw, n * ho * wo)} "
                             f"for images {tuple(x_shape)}")
        dx = _out(out, cols, tuple(x_shape), dt, "col2im")
        run("col2im", cols.size, cols, dx, kh, kw, sh, sw, ph, pw, ho, wo, dt.type(0))
        return dx

    def conv_bias_activation(z, b, out, kind, alpha=0.0):
        if z.size < min_size:
            return references["conv_bias_activation"](z, b, out, kind, alpha)
        z = _contiguous(z)
        dt = _check("conv_bias_activation", z)
        n, f, plane = out.shape
        if z.shape != (f, n * plane) or out.dtype != dt or not out.flags.c_contiguous:
            raise ValueError(f"conv_bias_activation: out must be C-contiguous {dt} (N, F, P) for z (F, N P); "
                             f"got out {out.dtype} {tuple(out.shape)} and z {tuple(z.shape)}")
        return _bias_epilogue("conv_bias_activation", lambda bias, *args: run("epilogue", out.size, z, bias, out, *args),
                              b, z[:, 0], out, kind, alpha, host_tanh)

    def conv_bias_activation_backward(dout, y, kind, alpha=0.0, out=None):
        if dout.size < min_size:
            return references["conv_bias_activation_backward"](dout, y, kind, alpha, out)
        dout = _contiguous(dout)
        y = dout if kind == "identity" else _contiguous(y)
        dt = _check("conv_bias_activation_backward", dout, y=y)
        n, f, plane = dout.shape
        dz, db = _out(out, dout, (f, n * plane), dt, "conv_bias_activation_backward"), _empty(dout, (f,), dt)
        run("epilogue_backward", dout.size, dout, y, dz, db, *_activation_args(kind, alpha, dt))
        if target.name == "cuda":
            db = dz.sum(axis=1)
        return dz, db

    def max_pool_forward(x, kernel, stride):
        if x.size < min_size:
            return references["max_pool_forward"](x, kernel, stride)
        (kh, kw), (sh, sw) = kernel, stride
        n, c, h, w = x.shape
        ho, wo = pooled_size(h, kh, sh), pooled_size(w, kw, sw)
        x = _contiguous(x)
        dt = _check("max_pool_forward", x)
        out, arg = _empty(x, (n * c, ho, wo), dt), _empty(x, (n * c, ho, wo), np.int32)
        run("max_pool", out.size, x.reshape(n * c, h, w), out, arg, kh, kw, sh, sw)
        return out.reshape(n, c, ho, wo), arg.reshape(n, c, ho, wo)

    def max_pool_backward(dout, argmax, x_shape, kernel, stride):
        if dout.size < min_size:
            return references["max_pool_backward"](dout, argmax, x_shape, kernel, stride)
        (kh, kw), (sh, sw) = kernel, stride
        n, c, h, w = x_shape
        dout, argmax = _contiguous(dout), _contiguous(argmax)
        dt = _check("max_pool_backward", dout)
        if argmax.shape != dout.shape or argmax.dtype != np.int32:
            raise ValueError(f"max_pool_backward: argmax must be int32 of shape {tuple(dout.shape)}, "
                             f"got {argmax.dtype} {tuple(argmax.shape)}")
        _, _, ho, wo = dout.shape
        dx = _empty(dout, (n * c, h, w), dt)
        run("max_pool_backward", dx.size, dout.reshape(n * c, ho, wo), argmax.reshape(n * c, ho, wo), dx,
            kh, kw, sh, sw, dt.type(0))
        return dx.reshape(n, c, h, w)

    return {
        "im2col": im2col, "col2im": col2im, "conv_bias_activation": conv_bias_activation,
        "conv_bias_activation_backward": conv_bias_activation_backward, "max_pool_forward": max_pool_forward,
        "max_pool_backward": max_pool_backward,
    }


def winograd_bindings(target: Target, references: dict, min_size: int = 0) -> dict:
    """{op name: binding} for the Winograd F(2x2, 3x3) transforms (kernels/winograd.py) on ``target``.

    The kernels see the (16, K, T) tile arrays as (16, L) rows (:func:`_tile_rows`); the arrays they
    write are views of padded buffers (``ops.winograd_buffer``), as are the layer's GEMM products.
    """
    host_tanh = SIMD_TANH_KINDS if target.name == "cpu" else ()

    def run(name, size, *args):
        target.run(getattr(winograd, f"{name}_{target.name}"), size, *args)

    def tiles_of(shape, padding):
        n, c, h, w = shape
        th, tw = winograd_tiles(h + 2 * padding[0] - 2, w + 2 * padding[1] - 2)
        return th, tw, n * th * tw

    def winograd_input(x, padding, out=None):
        if x.size < min_size:
            return references["winograd_input"](x, padding, out)
        x = _contiguous(x)
        dt = _check("winograd_input", x)
        th, tw, tiles = tiles_of(x.shape, padding)
        v = _tile_out(out, x, x.shape[1], tiles, "winograd_input")
        run("input", v.size // 16, x, _tile_rows(v, "V"), padding[0], padding[1], th, tw, dt.type(0))
        return v

    def winograd_input_backward(dv, x_shape, padding, out=None):
        if dv.size < min_size:
            return references["winograd_input_backward"](dv, x_shape, padding, out)
        th, tw, tiles = tiles_of(x_shape, padding)
        if dv.shape != (16, x_shape[1], tiles):
            raise ValueError(f"winograd_input_backward: dV has shape {tuple(dv.shape)}, expected "
                             f"{(16, x_shape[1], tiles)} for images {tuple(x_shape)} padded by {tuple(padding)}")
        rows = _tile_rows(dv, "dV")
        dt = _check("winograd_input_backward", rows)
        dx = _out(out, dv, tuple(x_shape), dt, "winograd_input_backward")
        run("input_backward", dx.size, rows, dx, padding[0], padding[1], th, tw, dt.type(0))
        return dx

    def winograd_output(m, b, out, kind, alpha=0.0):
        if m.size < min_size:
            return references["winograd_output"](m, b, out, kind, alpha)
        n, f, ho, wo = out.shape
        th, tw = winograd_tiles(ho, wo)
        rows = _tile_rows(m, "M")
        dt = _check("winograd_output", rows)
        if m.shape != (16, f, n * th * tw) or out.dtype != dt or not out.flags.c_contiguous:
            raise ValueError(f"winograd_output: out must be C-contiguous {dt} (N, F, Ho, Wo) for M (16, F, N th tw); "
                             f"got out {out.dtype} {tuple(out.shape)} and M {tuple(m.shape)}")
        return _bias_epilogue("winograd_output", lambda bias, *args: run("output", m.size // 16, rows, bias, out, *args),
                              b, rows[0, :f], out, kind, alpha, host_tanh)

    def winograd_output_backward(dout, y, kind, alpha=0.0, out=None):
        if dout.size < min_size:
            return references["winograd_output_backward"](dout, y, kind, alpha, out)
        dout = _contiguous(dout)
        y = dout if kind == "identity" else _contiguous(y)
        dt = _check("winograd_output_backward", dout, y=y)
        n, f, ho, wo = dout.shape
        th, tw = winograd_tiles(ho, wo)
        dm, db = _tile_out(out, dout, f, n * th * tw, "winograd_output_backward"), _empty(dout, (f,), dt)
        run("output_backward", dm.size // 16, dout, y, _tile_rows(dm, "dM"), db, *_activation_args(kind, alpha, dt))
        if target.name == "cuda":
            dz = dout if kind == "identity" else references["activation_backward"](dout, y, kind, alpha)
            db = dz.sum(axis=(0, 2, 3))
        return dm, db

    return {"winograd_input": winograd_input, "winograd_input_backward": winograd_input_backward,
            "winograd_output": winograd_output, "winograd_output_backward": winograd_output_backward}


def _out(out, like, shape, dtype, op: str):
    """``out`` if it is a C-contiguous ``dtype`` array of ``shape`` on ``like``'s device, else a new one."""
    if out is None:
        return _empty(like, shape, dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous \
            or device_of(out) != device_of(like):
        raise ValueError(f"{op}: out must be a C-contiguous {dtype} array of shape {tuple(shape)} on "
                         f"{device_of(like)}, got {out.dtype} {tuple(out.shape)}")
    return out


# The direct kernels hand out their tasks two at a time as threads free up (not in two fixed halves): after
# a GEMM, one of NumPy's OpenBLAS threads keeps spinning on a core, and with fixed halves the Numba thread
# sharing it held the whole kernel up. ConvNet training step (its affine layers use BLAS): 22.9 ms with
# fixed halves, 16.7 ms so, 15.7 ms on one thread; 32->64 conv alone: 29.0 against 29.1 ms (interleaved).
DIRECT_CHUNK = 2


def direct_conv_bindings(target: Target, references: dict, min_size: int = 0) -> dict:
    """{op name: binding} for the direct convolution (kernels/conv_direct.py), CPU and float32 only.

    The kernels step along output rows 16 pixels at a time, so they take outputs whose width is a multiple
    of 16; other shapes, float64 and small arrays go to the references.
    """

    def fits(xpad, kernel) -> bool:
        wo = xpad.shape[3] - kernel[1] + 1
        return xpad.dtype == np.float32 and wo % 16 == 0 and xpad.size >= min_size

    def conv_direct_op(xpad, w, b, relu=False):
        if not fits(xpad, w.shape[2:]):
            return references["conv_direct"](xpad, w, b, relu)
        xpad = _contiguous(xpad)
        dt = _check("conv_direct", xpad)
        if w.ndim != 4 or w.shape[1] != xpad.shape[1] or w.dtype != dt:
            raise ValueError(f"conv_direct: w must be {dt} (F, {xpad.shape[1]}, kh, kw), got {w.dtype} {tuple(w.shape)}")
        f, _, kh, kw = w.shape
        if b is not None and (b.shape != (f,) or b.dtype != dt):
            raise ValueError(f"conv_direct: b must be {dt} ({f},), got {b.dtype} {tuple(b.shape)}")
        packed = conv_direct.pack_filters(w)
        bias = np.zeros(packed.shape[0] * conv_direct.FILTERS, dt)
        if b is not None:
            bias[:f] = b
        y = _empty(xpad, (xpad.shape[0], f, xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1), dt)
        # threads by multiply-adds, not elements: each output element costs C kh kw of them
        with numba.parallel_chunksize(DIRECT_CHUNK):
            target.run(conv_direct.direct_forward_cpu, y.size * w[0].size, xpad, packed, bias, bool(relu), y)
        return y

    def conv_direct_param_grads(xpad, dy, kernel):
        if not fits(xpad, kernel):
            return references["conv_direct_param_grads"](xpad, dy, kernel)
        xpad, dy = _contiguous(xpad), _contiguous(dy)
        dt = _check("conv_direct_param_grads", xpad)
        (kh, kw), (n, f, ho, wo) = kernel, dy.shape
        if dy.dtype != dt or (n, ho, wo) != (xpad.shape[0], xpad.shape[2] - kh + 1, xpad.shape[3] - kw + 1):
            raise ValueError(f"conv_direct_param_grads: dy must be {dt} (N, F, Ho, Wo) for images {tuple(xpad.shape)} "
                             f"and a {kh}x{kw} kernel, got {dy.dtype} {tuple(dy.shape)}")
        dw, db = _empty(xpad, (f, xpad.shape[1], kh, kw), dt), _empty(xpad, (f,), dt)
        # two tasks per thread at least: the images are shared out where there are fewer filter blocks than that
        blocks = -(-f // conv_direct.GRAD_FILTERS)
        groups = -(-2 * numba.config.NUMBA_NUM_THREADS // blocks)
        with numba.parallel_chunksize(DIRECT_CHUNK):
            target.run(conv_direct.direct_param_grads_cpu, dy.size * dw[0].size, xpad, dy, groups, dw, db)
        return dw, db

    def pad_images(x, padding):
        (ph, pw) = padding
        if x.dtype != np.float32 or x.ndim != 4 or ph < 0 or pw < 0:  # the kernel copies 16 float32 at a time
            return references["pad_images"](x, padding)
        x = _contiguous(x)
        out = _empty(x, (*x.shape[:2], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), x.dtype)
        conv_direct.pad_images_cpu(x, ph, pw, out)
        return out

    return {"conv_direct": conv_direct_op, "conv_direct_param_grads": conv_direct_param_grads,
            "pad_images": pad_images}


def _tile_out(out, like, k: int, tiles: int, op: str):
    """``out`` if it is a (16, k, tiles) tile array of ``like``'s dtype the kernels can write in place, else a new one."""
    if out is None:
        return winograd_buffer(like, k, tiles)
    if out.shape != (16, k, tiles) or out.dtype != like.dtype or not _tile_layout(out):
        raise ValueError(f"{op}: out must be a {like.dtype} tile array of shape {(16, k, tiles)} with rows of "
                         f"(k, tiles) matrices (ops.winograd_buffer), got {out.dtype} {tuple(out.shape)} "
                         f"with strides {out.strides}")
    return out


def _tile_layout(a) -> bool:
    """True when the (16, K, T) array ``a`` is 16 C-contiguous (K, T) matrices spaced at least K T apart."""
    size, (k, t) = a.itemsize, a.shape[1:]
    return a.strides[1:] == (t * size, size) and a.strides[0] >= k * t * size and a.strides[0] % size == 0


def _tile_rows(a, name: str):
    """A (16, K, T) tile array as (16, L) C-contiguous rows over the same memory, matrix k from row k's start.

    Views of ``ops.winograd_buffer`` (and any C-contiguous array) qualify as they are; another layout
    is copied into a padded buffer. Kernels read only the first K T entries of each row.
    """
    xp = array_module(a)
    if a.ndim != 3 or a.shape[0] != 16:
        raise ValueError(f"{name} must have shape (16, channels, tiles), got {tuple(a.shape)}")
    if not _tile_layout(a):
        b = winograd_buffer(a, *a.shape[1:])
        b[...] = a
        a = b
    row = a.strides[0]
    return xp.lib.stride_tricks.as_strided(a, shape=(16, row // a.itemsize), strides=(row, a.itemsize))


def _empty(like, shape, dtype):
    """An uninitialised array in ``like``'s namespace (the kernel writes every element)."""
    return array_module(like).empty(shape, dtype)
