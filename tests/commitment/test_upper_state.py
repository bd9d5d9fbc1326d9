"""The SHA-extension engine's compiled kernels never run a SHA instruction with dirty upper
vector state (the state-transition penalty made them about 100 times slower on an Intel
host with AVX-512), and the assembly check that says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import llvmlite.binding as llvm
import pytest

from tests.commitment.upper_state import dirty_sse_instructions, sse_instructions

# Straight from numba's output for a kernel before the fix: a 256-bit copy of the initial
# state, then the rounds.
DIRTY_THEN_SHA = """
_kernel:
\tvmovdqa\t(%r15), %ymm0
\tvmovdqu\t%ymm0, (%r14)
.LBB0_3:
\tvmovdqu\t(%r13), %xmm0
\tsha256rnds2\t%xmm0, %xmm4, %xmm8
\tretq
"""


def test_a_sha_instruction_after_a_ymm_write_is_found() -> None:
    assert dirty_sse_instructions(DIRTY_THEN_SHA) == ["line 7: sha256rnds2\t%xmm0, %xmm4, %xmm8"]
    assert sse_instructions(DIRTY_THEN_SHA) == 1


def test_vzeroupper_between_cleans_and_a_later_wide_write_dirties_again() -> None:
    clean = DIRTY_THEN_SHA.replace(".LBB0_3:\n", ".LBB0_3:\n\tvzeroupper\n")
    assert dirty_sse_instructions(clean) == []
    again = clean.replace("\tsha256rnds2", "\tvpaddd\t%zmm1, %zmm2, %zmm3\n\tsha256rnds2")
    assert len(dirty_sse_instructions(again)) == 1


def test_paths_are_followed_through_loops_calls_and_jump_tables() -> None:
    # The loop's back edge brings the ymm write of its end to the SHA instruction at its top.
    loop = (
        "_kernel:\n\tvzeroupper\n.LBB0_1:\n\tsha256msg1\t%xmm1, %xmm2\n"
        "\tvmovdqu\t%ymm0, (%rax)\n\tjne\t.LBB0_1\n\tretq\n"
    )
    assert dirty_sse_instructions(loop) == ["line 4: sha256msg1\t%xmm1, %xmm2"]
    # A call may return with the upper state dirty; a function's entry is unknown.
    call = "_kernel:\n\tvzeroupper\n\tcallq\t*%rax\n\tsha256msg2\t%xmm1, %xmm2\n\tretq\n"
    assert len(dirty_sse_instructions(call)) == 1
    assert len(dirty_sse_instructions("_kernel:\n\tsha256msg2\t%xmm1, %xmm2\n")) == 1
    # A jump table's targets are reached from the indirect jump (here with dirty state),
    # and a block after an unconditional jump only from its own predecessors.
    table = (
        "_kernel:\n\tvzeroupper\n\tvmovdqu\t%ymm0, (%rax)\n\tjmpq\t*(%rcx,%rax,8)\n"
        ".LBB0_4:\n\tvzeroupper\n\tjmp\t.LBB0_6\n.LBB0_5:\n\tpshufd\t$14, %xmm1, %xmm1\n"
        ".LBB0_6:\n\tsha256rnds2\t%xmm0, %xmm1, %xmm2\n\tretq\n"
        "\t.section\t.rodata\n.LJTI0_0:\n\t.quad\t.LBB0_5\n"
    )
    assert dirty_sse_instructions(table) == [
        "line 9: pshufd\t$14, %xmm1, %xmm1",
        "line 11: sha256rnds2\t%xmm0, %xmm1, %xmm2",
    ]
    # VEX-encoded 128-bit instructions are not legacy SSE, and neither dirty the state.
    assert sse_instructions("_kernel:\n\tvpaddd\t%xmm1, %xmm2, %xmm3\n") == 0


# Compiles every kernel of the engine afresh (cached code cannot be inspected), runs the
# paths that use them, and prints each kernel's assembly of each signature as JSON.
COMPILE_AND_DUMP = """
import json, sys
import numpy as np
from numba.core.registry import CPUDispatcher
from agents.commitment import hashing, shani

engine = shani.ShaNiEngine()
assert engine.agrees_with_hashlib()
# Leaves on every core (an odd count of pairs' worth and a cut last leaf), node pairs.
data = np.zeros(hashing.PARALLEL_MIN_BYTES + 3 * 1024 + 5, dtype=np.uint8)
engine.leaves_root(data)
engine.hash_many(data, 64, hashing.PARALLEL_MIN_BYTES // 64 + 1)
kernels = {
    name: list(value.inspect_asm().values())
    for name, value in vars(shani).items()
    if isinstance(value, CPUDispatcher) and value.py_func.__module__ == shani.__name__
}
json.dump(kernels, sys.stdout)
"""


@pytest.mark.skipif(
    not llvm.get_host_cpu_features().get("sha", False), reason="the CPU has no SHA extensions"
)
def test_shani_kernels_run_no_sha_instruction_with_dirty_upper_state(tmp_path: Path) -> None:
    environment = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", COMPILE_AND_DUMP],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    kernels: dict[str, list[str]] = json.loads(done.stdout)
    # Every kernel of the module, each compiled for at least one signature.
    assert {"_pair", "_single", "_pairs_serial", "_pairs_parallel", "_message"} <= set(kernels)
    assert all(kernels.values()), [name for name, asms in kernels.items() if not asms]
    checked = 0
    for name, asms in kernels.items():
        for asm in asms:
            assert dirty_sse_instructions(asm) == [], name
            checked += asm.count("sha256rnds2")
    assert checked > 0


@pytest.mark.skipif(
    not llvm.get_host_cpu_features().get("sha", False), reason="the CPU has no SHA extensions"
)
@pytest.mark.parametrize("avx", [True, False])
def test_vzeroupper_is_emitted_only_where_the_cpu_has_avx(
    avx: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CPU with SHA extensions and no AVX (Goldmont) could not compile the instruction.
    from llvmlite import ir

    from agents.commitment import shani

    monkeypatch.setattr(shani, "_HAS_UPPER_STATE", avx)
    module = ir.Module()
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.IntType(64)]), "f")
    builder = ir.IRBuilder(function.append_basic_block())
    shani._state_slots(builder, function.args[0], 2)
    builder.ret_void()
    assert ('call void @"llvm.x86.avx.vzeroupper"()' in str(module)) == avx
