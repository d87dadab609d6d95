"""Sixteen float32 lanes as one Numba value, for kernels that need register blocking.

Numba's auto-vectoriser turns simple loops into SIMD code, but a kernel that keeps a block of
accumulators in registers across a long reduction (a direct convolution) has to say so. ``Vec16``
is an LLVM ``<16 x float>``: one AVX-512 register, or two AVX2 ones where the CPU has no AVX-512
(LLVM splits the operations; the code stays correct everywhere).

    vload(a, i)       a[i:i + 16] of a 1-D float32 array (unaligned)
    vstore(a, i, v)   a[i:i + 16] = v
    vbroadcast(a, i)  a[i] of a 1-D float32 array in all 16 lanes (one load, no negative-index wraparound)
    vzero()           zeros
    vfma(a, b, c)     a * b + c, fused, lane by lane
    vadd(a, b)        a + b lane by lane
    vmax0(v)          max(v, 0) lane by lane (ReLU; NaN stays NaN)
Indices are not checked: callers keep i + 16 within the array.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 16
_VEC = ir.VectorType(ir.FloatType(), LANES)


class Vec16(types.Type):
    def __init__(self):
        super().__init__(name="Vec16f32")


vec16 = Vec16()


@register_model(Vec16)
class _Vec16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _pointer(context, builder, array_type, array, index):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [index]), _VEC.as_pointer())


@intrinsic
def vload(typingctx, array, index):
    def codegen(context, builder, sig, args):
        return builder.load(_pointer(context, builder, sig.args[0], *args), align=4)

    return vec16(array, index), codegen


@intrinsic
def vstore(typingctx, array, index, value):
    def codegen(context, builder, sig, args):
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], args[1]), align=4)
        return context.get_dummy_value()

    return types.void(array, index, value), codegen


@intrinsic
def vbroadcast(typingctx, array, index):
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        scalar = builder.load(builder.gep(data, [args[1]]), align=4)
        undef = ir.Constant(_VEC, ir.Undefined)
        one = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, undef, ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))

    return vec16(array, index), codegen


@intrinsic
def vzero(typingctx):
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * LANES)

    return vec16(), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v16f32")
        return builder.call(fn, args)

    return vec16(vec16, vec16, vec16), codegen


@intrinsic
def vadd(typingctx, a, b):
    def codegen(context, builder, sig, args):
        return builder.fadd(*args)

    return vec16(vec16, vec16), codegen


@intrinsic
def vmax0(typingctx, v):
    def codegen(context, builder, sig, args):
        zero = ir.Constant(_VEC, [0.0] * LANES)
        # 0 where v <= 0 (an ordered compare: NaN stays NaN, as kernels/activations.py's ReLU)
        return builder.select(builder.fcmp_ordered("<=", args[0], zero), zero, args[0])

    return vec16(vec16), codegen
