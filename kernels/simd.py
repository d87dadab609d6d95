"""One 64-byte vector of floats as one Numba value, for kernels that need register blocking.

Numba's auto-vectoriser turns simple loops into SIMD code, but a kernel that keeps a block of
accumulators in registers across a long reduction (a direct convolution, an L1 distance block) has
to say so. A vector is an LLVM ``<16 x float>`` (float32 arrays) or ``<8 x double>`` (float64):
one AVX-512 register, or two AVX2 ones where the CPU has no AVX-512 (LLVM splits the operations;
the code stays correct everywhere). Its type follows the array it was loaded from, so one kernel
body serves both dtypes.

    vload(a, i)          a[i:i + lanes] of a 1-D float array (unaligned)
    vstore(a, i, v)      a[i:i + lanes] = v
    vbroadcast(a, i)     a[i] in all lanes (one load, no negative-index wraparound)
    vsplat(v, x)         the scalar x in all lanes of a vector typed like v
    vzero()              float32 zeros; vzeros(a): zeros of a's dtype
    vfma(a, b, c)        a * b + c, fused, lane by lane
    vadd, vsub, vmul     lane by lane
    vabs(v)              |v| lane by lane
    vmax0(v)             max(v, 0) lane by lane (ReLU; NaN stays NaN)
    vabove(v, limit)     v where v > limit, else 0, lane by lane
    vmask_lt(v, x)       bit l set where lane l of v < the scalar x (an int)
    vmask_le(v, x)       bit l set where lane l of v <= x
    vlane(v, l)          lane l of v, a scalar
    lanes(a)             how many of a's elements fill a vector: 16 (float32) or 8 (float64), a constant
    vwiden(v)            v's lanes in float64 (a float32 vector's 16 lanes: two registers); float64 as it is
    vnarrow(w, like)     a widened vector back in the type of the vector ``like``
Indices are not checked: callers keep i + lanes within the array.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 16  # float32 lanes (the convolution kernels' unit)
VECTOR_BYTES = 64
_I32 = ir.IntType(32)


class Vec(types.Type):
    """A vector of ``lanes`` values of ``dtype`` (a Numba float type); by default ``VECTOR_BYTES`` bytes of them."""

    def __init__(self, dtype, lanes: int | None = None):
        self.dtype = dtype
        self.lanes = VECTOR_BYTES // (dtype.bitwidth // 8) if lanes is None else lanes
        super().__init__(name=f"Vec{self.lanes}{dtype}")


def _ir_float(dtype):
    return ir.FloatType() if dtype == types.float32 else ir.DoubleType()


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(_ir_float(fe_type.dtype), fe_type.lanes))


vec16 = Vec(types.float32)
VECTORS = {types.float32: vec16, types.float64: Vec(types.float64)}
WIDE = {vec16: Vec(types.float64, vec16.lanes), VECTORS[types.float64]: VECTORS[types.float64]}  # vwiden's results


def _vec_of(array):
    """The vector type of a 1-D (or any) float array type, None for anything else."""
    return VECTORS.get(getattr(array, "dtype", None))


def _ir(vec):
    return ir.VectorType(_ir_float(vec.dtype), vec.lanes)


def _pointer(context, builder, array_type, array, index, vec):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _ir(vec).as_pointer())


def _splat(builder, vec, scalar):
    undef = ir.Constant(_ir(vec), ir.Undefined)
    one = builder.insert_element(undef, scalar, ir.Constant(_I32, 0))
    return builder.shuffle_vector(one, undef, ir.Constant(ir.VectorType(_I32, vec.lanes), [0] * vec.lanes))


def _zeros(vec):
    return ir.Constant(_ir(vec), [0.0] * vec.lanes)


@intrinsic
def vload(typingctx, array, index):
    vec = _vec_of(array)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], *args, vec), align=4)

    return vec(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    vec = _vec_of(array)
    if vec is None or value != vec:
        return None

    def codegen(context, builder, sig, args):
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1], vec), align=4)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def vbroadcast(typingctx, array, index):
    vec = _vec_of(array)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return _splat(builder, vec, builder.load(builder.gep(data, [args[1]]), align=4))

    return vec(array, index), codegen


@intrinsic
def vsplat(typingctx, like, x):
    if not isinstance(like, Vec):
        return None

    def codegen(context, builder, sig, args):
        scalar = context.cast(builder, args[1], sig.args[1], like.dtype)
        return _splat(builder, like, scalar)

    return like(like, x), codegen


@intrinsic
def vzero(typingctx):
    def codegen(context, builder, sig, args):
        return _zeros(vec16)

    return vec16(), codegen


@intrinsic
def vzeros(typingctx, array):
    vec = _vec_of(array)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return _zeros(vec)

    return vec(array), codegen


@intrinsic
def lanes(typingctx, array):
    vec = _vec_of(array)
    if vec is None:
        return None

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, vec.lanes)

    return types.intp(array), codegen


def _binary(op):
    @intrinsic
    def binary(typingctx, a, b):
        if not isinstance(a, Vec) or a != b:
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(*args)

        return a(a, b), codegen

    return binary


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")


@intrinsic
def vfma(typingctx, a, b, c):
    if not isinstance(a, Vec) or not a == b == c:
        return None

    def codegen(context, builder, sig, args):
        name = f"llvm.fma.v{a.lanes}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_ir(a), [_ir(a)] * 3), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def vabs(typingctx, v):
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        name = f"llvm.fabs.v{v.lanes}f{v.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_ir(v), [_ir(v)]), name)
        return builder.call(fn, args)

    return v(v), codegen


@intrinsic
def vmax0(typingctx, v):
    if not isinstance(v, Vec):
        return None

    def codegen(context, builder, sig, args):
        zero = _zeros(v)
        # 0 where v <= 0 (an ordered compare: NaN stays NaN, as kernels/activations.py's ReLU)
        return builder.select(builder.fcmp_ordered("<=", args[0], zero), zero, args[0])

    return v(v), codegen


@intrinsic
def vabove(typingctx, v, limit):
    if not isinstance(v, Vec) or v != limit:
        return None

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[0], _zeros(v))

    return v(v, limit), codegen


def _mask(predicate):
    @intrinsic
    def mask(typingctx, v, x):
        if not isinstance(v, Vec) or not isinstance(x, types.Float):
            return None

        def codegen(context, builder, sig, args):
            scalar = context.cast(builder, args[1], sig.args[1], v.dtype)
            bits = builder.fcmp_ordered(predicate, args[0], _splat(builder, v, scalar))
            return builder.zext(builder.bitcast(bits, ir.IntType(v.lanes)), ir.IntType(64))

        return types.int64(v, x), codegen

    return mask


vmask_lt = _mask("<")
vmask_le = _mask("<=")


@intrinsic
def vlane(typingctx, v, lane):
    if not isinstance(v, Vec) or not isinstance(lane, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.extract_element(args[0], builder.trunc(args[1], _I32))

    return v.dtype(v, lane), codegen


@intrinsic
def vwiden(typingctx, v):
    wide = WIDE.get(v)
    if wide is None:
        return None

    def codegen(context, builder, sig, args):
        return args[0] if wide == v else builder.fpext(args[0], _ir(wide))

    return wide(v), codegen


@intrinsic
def vnarrow(typingctx, w, like):
    if not isinstance(like, Vec) or WIDE.get(like) != w:
        return None

    def codegen(context, builder, sig, args):
        return args[0] if w == like else builder.fptrunc(args[0], _ir(like))

    return like(w, like), codegen
