"""The factory of gate kernels (kernels/elementwise.py): kernels made from a gate's scalar rules, cached on disk."""

import json
import os
import subprocess
import sys

import numpy as np

import gpunn as gn

PROBE = """
import json, numpy as np, gpunn as gn
x = np.linspace(-3, 3, 100_000).astype(np.float32)
for gate in (gn.nn.ReLU(), gn.nn.LeakyReLU(0.1), gn.nn.GELU()):
    gn.ops.activation.with_kernel(x, gate)
stats = {type(g).__name__: [len(g.kernels.forward.cpu.stats.cache_hits), len(g.kernels.forward.cpu.stats.cache_misses)]
         for g in (gn.nn.ReLU, gn.nn.LeakyReLU, gn.nn.GELU)}
print(json.dumps(stats))
"""


def test_a_new_process_loads_each_gate_s_kernels_from_the_disk_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_ENABLE_CUDASIM", None)

    def run():
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert all(misses == 1 for _, misses in first.values()), first  # compiled once, each gate its own kernel
    assert all(hits == 1 and misses == 0 for hits, misses in second.values()), second  # then loaded


def test_each_gate_s_cache_key_is_its_own_rules(rng):
    """Kernels of different gates share a source file and a body, so the key is the rules' source."""
    salts = {cls: cls.kernels.salt for cls in gn.nn.ACTIVATIONS.values()}
    assert len(set(salts.values())) == len(salts) and all(salts.values())
    assert gn.optim.Adam.kernels.salt and gn.optim.AdamW.kernels is gn.optim.Adam.kernels


def test_a_gate_s_numbers_reach_its_kernels_in_the_arrays_dtype():
    k = gn.nn.LeakyReLU(0.25).kernel_numbers(np.dtype(np.float32))
    assert k._fields == ("zero", "half", "one", "alpha") and all(type(v) is np.float32 for v in k) and k.alpha == 0.25
    assert json.dumps(gn.nn.GELU().kernel_numbers(np.dtype(np.float64))._fields) == '["zero", "half", "one", "c0", "c1"]'
