"""bench/peer_blas.py: a peer whose OpenBLAS falls back to a generic kernel is imported on this CPU's kernel.

Each case runs in a fresh interpreter, as a benchmark suite does: there, the fallback is made to happen
(``OPENBLAS_CORETYPE=Prescott`` in the environment the peer would load with, after NumPy loaded on its
own kernel), and the peer must still come up on NumPy's kernel, and say so.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
CASE = """
import json, os, sys
sys.path.insert(0, {bench!r})
import numpy
import peer_blas
wanted = peer_blas.target()
if {generic}:
    os.environ["OPENBLAS_CORETYPE"] = "Prescott"  # what an OpenBLAS that does not know this CPU picks
peer_blas.import_at_its_best({module!r}, {libs!r})
print(json.dumps({{"wanted": wanted, "peer": peer_blas.peer(2, {libs!r}),
                  "got": [i["architecture"] for i in peer_blas.openblas_of({libs!r})]}}))
"""
PEERS = {"scipy": ("scipy.linalg", "scipy.libs"), "faiss": ("faiss", "faiss_cpu.libs")}  # (module, its libraries)


def run_case(peer: str, generic: bool) -> dict:
    module, libs = PEERS[peer]
    pytest.importorskip(module)
    code = CASE.format(bench=str(BENCH), generic=generic, module=module, libs=libs)
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_generic_kernel_is_replaced_by_this_cpus(peer):
    found = run_case(peer, generic=True)
    if not found["got"]:
        pytest.skip(f"{peer} brings no OpenBLAS of its own here")
    assert set(found["got"]) == {found["wanted"]} and found["wanted"] not in ("Prescott", "Katmai")
    said = f"openblas {found['wanted']} (OPENBLAS_CORETYPE={found['wanted']}; it picked "
    assert found["peer"]["blas"].startswith(said) and found["wanted"] not in found["peer"]["blas"][len(said):]


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_peer_on_this_cpus_kernel_is_left_alone(peer):
    found = run_case(peer, generic=False)
    if not found["got"]:
        pytest.skip(f"{peer} brings no OpenBLAS of its own here")
    if set(found["got"]) == {found["wanted"]}:
        assert found["peer"] == {"threads": 2, "blas": f"openblas {found['wanted']}"}
    else:  # this machine's copy does pick a generic kernel by itself: then it is set, and said
        assert "OPENBLAS_CORETYPE" in found["peer"]["blas"]
