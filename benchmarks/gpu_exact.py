"""The exact kernels on a GPU against the CPU path: same bits, and how fast.

``python -m benchmarks.gpu_exact`` (a few minutes on one GPU):

1. every kernel operation on random and edge-case inputs, on the device (the
   eager torch path) and on the CPU path (numba): the bits must be equal;
2. one full training segment of each example model, replayed with a trace on
   the device and on the CPU: state roots and trace roots must be equal;
3. exact against native training steps on the device (ms per step, ratio).

It prints a short table last and writes ``benchmarks/results/gpu_exact.json``;
the exit status is 1 if any comparison differs. Without CUDA it runs the same
comparisons on the CPU (eager path against numba path) as a smoke test, and
says so in the JSON (``device``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.commitment import state_root
from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.kernels import Kernels
from agents.learning import datasets
from agents.learning.backends import Backend, get_backend
from agents.learning.spec import load_spec
from agents.learning.task import Task

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "digits_mlp": "digits-mlp",
    "small_cnn": "digits-cnn",
    "tiny_transformer": "char-transformer",
}
SAMPLES = 1 << 16
# ±0, subnormals, min normal, ±1, ±max, ±inf, NaN payloads, ties, exp edges, sqrt(2).
# fmt: off
EDGE_BITS = np.array([
    0x0, 0x80000000, 0x1, 0x807FFFFF, 0x00800000, 0x3F800000, 0xBF800000, 0x7F7FFFFF,
    0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001, 0x33800000,
    0x4B000000, 0x73800000, 0x42B17218, 0xC2D00000, 0x3FB504F3,
], dtype=np.uint32)
# fmt: on


def _values(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Half random bit patterns (every class, NaN payloads), half ordinary values, plus edges."""
    n = int(np.prod(shape))
    bits = rng.integers(0, 1 << 32, n // 2, dtype=np.uint64).astype(np.uint32).view(np.float32)
    ordinary = (rng.standard_normal(n - n // 2) * 4).astype(np.float32)
    values = np.concatenate([bits, ordinary])[rng.permutation(n)]
    values[: min(n, EDGE_BITS.size)] = EDGE_BITS.view(np.float32)[: min(n, EDGE_BITS.size)]
    return values.reshape(shape)


def _op_cases(rng: np.random.Generator) -> dict[str, tuple[str, list[Any]]]:
    """Operation name -> (kernel method, arguments as numpy arrays or plain values)."""
    a, b, c = (_values(rng, SAMPLES) for _ in range(3))
    n = rng.integers(-300, 300, SAMPLES).astype(np.float32)
    x = (rng.standard_normal((4, 3, 9, 8)) * 2).astype(np.float32)
    cols = rng.standard_normal((4 * 9 * 8, 3 * 9)).astype(np.float32)
    cases: dict[str, tuple[str, list[Any]]] = {
        name: (name, [a, b])
        for name in ("add", "sub", "mul", "div", "maximum", "minimum", "lt", "le", "eq")
    }
    cases.update(
        {
            "add (broadcast row)": ("add", [a.reshape(256, 256), b[:256]]),
            "mul (immediate)": ("mul", [a, np.float32(0.1)]),
            "div (immediate)": ("div", [a, np.float32(3.0)]),
            "select": ("select", [np.where(c > 0, c, np.float32(0)), a, b]),
            "ldexp": ("ldexp", [a, n]),
            "neg": ("neg", [a]),
            "abs": ("abs", [a]),
            "sqrt": ("sqrt", [a]),
            "exp": ("exp", [a]),
            "exp (ordinary range)": ("exp", [rng.uniform(-104, 89, SAMPLES).astype(np.float32)]),
            "log": ("log", [a]),
            "sum (last axis)": ("sum", [a.reshape(64, 1024), 1]),
            "sum (first axis)": ("sum", [a.reshape(64, 1024), 0]),
            "amax": ("amax", [a.reshape(256, 256), 1]),
            "matmul_nt": ("matmul_nt", [_values(rng, 37, 300), _values(rng, 29, 300)]),
            "matmul_nt (batched)": (
                "matmul_nt",
                [_values(rng, 8, 32, 12), _values(rng, 8, 32, 12)],
            ),
            "transpose": ("transpose", [x, [0, 2, 3, 1]]),
            "reshape": ("reshape", [x, [12, 72]]),
            "index_select": ("index_select", [x, np.array([3, 0, 0, 2], dtype=np.float32), 0]),
            "take_along": (
                "take_along",
                [cols[:, :10], rng.integers(0, 10, (288, 1)).astype(np.float32)],
            ),
            "one_hot": ("one_hot", [rng.integers(0, 10, 50).astype(np.float32), 10]),
            "causal_fill": ("causal_fill", [x[:, :, :8, :8].copy(), np.float32(-np.inf)]),
            "im2col": ("im2col", [x, 3, 2, 1]),
            "col2im": ("col2im", [cols.reshape(4 * 9 * 8, 27), [4, 3, 9, 8], 3, 1, 1]),
            "scatter_add": ("scatter_add", [cols, rng.integers(0, 40, 288).astype(np.float32), 40]),
        }
    )
    return cases


def _on(kernels: Kernels, argument: Any) -> Any:
    return kernels.from_numpy(argument) if isinstance(argument, np.ndarray) else argument


def check_ops(device: Kernels, reference: Kernels, seed: int = 0) -> dict[str, bool]:
    """Every operation on both kernel sets: name -> whether the bits agree."""
    rng = np.random.default_rng(seed)
    results = {}
    for label, (method, args) in _op_cases(rng).items():
        got = device.to_numpy(getattr(device, method)(*(_on(device, v) for v in args)))
        want = reference.to_numpy(getattr(reference, method)(*(_on(reference, v) for v in args)))
        results[label] = got.shape == want.shape and bool(
            (got.view(np.uint32) == want.view(np.uint32)).all()
        )
    return results


def _task(example: str) -> Task:
    spec = load_spec(EXAMPLES / f"{example}.yaml")
    assert spec.dataset.source is not None
    return Task.bind(spec, datasets.build(spec.dataset.source))


def _segment_roots(backend: Backend, task: Task) -> tuple[str, str]:
    session = backend.start(task, task.initial_state(), trace=True)
    session.run(task.segment_batches(0))
    root = session.trace_root()
    assert root is not None
    return state_root(session.state()).hex(), root.hex()


def _step_ms(backend: Backend, task: Task, steps: int) -> float:
    batches = task.batches(0, steps + 1)
    session = backend.start(task, task.initial_state())
    session.run(batches[:1])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    session.run(batches[1:])
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps * 1e3


def run(device: str | None = None, timing_steps: int = 8) -> dict[str, Any]:
    """All checks and timings; ``device`` defaults to cuda when present, else cpu (smoke)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    figures: dict[str, Any] = {
        "device": device,
        "device_name": (
            torch.cuda.get_device_name()
            if device == "cuda"
            else "smoke test: eager path on the CPU against the numba path"
        ),
    }
    ops = check_ops(EagerKernels(device), CpuKernels())
    figures["ops"] = ops
    figures["ops_equal"] = all(ops.values())
    cpu_exact = get_backend("exact")
    device_exact = get_backend("exact", device=device, path="eager")
    native = get_backend("native", device=device, threads=0 if device == "cuda" else 2)
    models: dict[str, Any] = {}
    for key, example in MODELS.items():
        task = _task(example)
        cpu_state, cpu_trace = _segment_roots(cpu_exact, task)
        dev_state, dev_trace = _segment_roots(device_exact, task)
        native_ms = _step_ms(native, task, timing_steps)
        exact_ms = _step_ms(device_exact, task, timing_steps)
        models[key] = {
            "state_root_equal": cpu_state == dev_state,
            "trace_root_equal": cpu_trace == dev_trace,
            "state_root": dev_state,
            "trace_root": dev_trace,
            "native_step_ms": round(native_ms, 3),
            "exact_step_ms": round(exact_ms, 3),
            "ratio": round(exact_ms / native_ms, 3),
        }
    figures["models"] = models
    figures["all_equal"] = figures["ops_equal"] and all(
        m["state_root_equal"] and m["trace_root_equal"] for m in models.values()
    )
    return figures


def table(figures: dict[str, Any]) -> str:
    """The short summary printed last."""
    different = [name for name, same in figures["ops"].items() if not same]
    lines = [
        f"device: {figures['device']} ({figures['device_name']})",
        f"ops: {len(figures['ops']) - len(different)}/{len(figures['ops'])} bit-identical"
        + (f"; differ: {', '.join(different)}" if different else ""),
        f"{'model':<18}{'roots':>8}{'native ms':>11}{'exact ms':>10}{'ratio':>8}",
    ]
    for name, m in figures["models"].items():
        same = "equal" if m["state_root_equal"] and m["trace_root_equal"] else "DIFFER"
        lines.append(
            f"{name:<18}{same:>8}{m['native_step_ms']:>11.2f}{m['exact_step_ms']:>10.2f}"
            f"{m['ratio']:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    figures = run(args[0] if args else None)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu_exact.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(table(figures))
    return 0 if figures["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
