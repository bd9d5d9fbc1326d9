"""What a malformed proof costs its verifier, against an honest proof of the same spec.

For the digits MLP example (examples/digits-mlp.yaml), an honest proof is trained
into an embedded store, and every craft of ``agents.learning.malformed`` is made
from it (plus ``dag-empty-leaves``: a final model whose DAG, two blocks of 80 KB,
links an empty leaf 4,000,000 times). Each proof is checked as the verifier's agent
does: the manifest read within the spec's bound and parsed, then ``verify`` with
the default replayer.

- ``honest_verify_s``, ``honest_verify_cpu_s``: verifying the honest proof (median);
- ``honest_peak_bytes``: the most memory that verification held at once
  (tracemalloc, numpy's buffers included);
- ``crafts``: per craft, ``fault`` (the kind found), ``verify_s``, ``verify_cpu_s``,
  ``time_over_honest`` (CPU time over the honest proof's), ``peak_bytes`` and
  ``extra_peak_bytes`` (over the honest proof's peak);
- ``worst_time_over_honest``, ``worst_extra_peak_bytes``, and
  ``memory_bound_bytes``: the bound docs/proof.md states (the largest artifact limit,
  32 times the largest header room, 8 times a DAG path's 8 MiB), with
  ``within_memory_bound``; ``faults_as_expected``: every craft found as the fault
  it is;
- ``replay_from_values``: a segment replayed from a state whose floats are all
  subnormal, NaN, +inf, huge (times 1e37) or half of them subnormal, per replay
  backend (``exact``, ``native``): ``cpu_s`` and ``over_honest`` (over the same
  segment replayed from the honest state; fastest of ``REPEATS``), with
  ``worst_replay_over_honest``. A solver chooses the values of its checkpoints; these
  figures say whether values can slow a verifier down.
"""

from __future__ import annotations

import contextlib
import hashlib
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from agents.errors import VeritrainError
from agents.learning.backends import Backend, backend_available, get_backend
from agents.learning.layout import STEP, State
from agents.learning.malformed import CRAFTS, MalformedProof, craft
from agents.learning.proof import Manifest, artifact_limits, decode_checkpoint, parse_manifest
from agents.learning.solver import train
from agents.learning.spec import TaskSpec, load_spec
from agents.learning.task import Task, open_task
from agents.learning.verifier import Replayer, default_replay_backend, verify
from agents.store import canonical_json
from agents.store.cid import CID, DAG_PB, RAW
from agents.store.dagpb import encode_node
from agents.store.embedded import EmbeddedStore
from agents.store.reader import MAX_PATH_BYTES
from agents.store.unixfs import encode_inner

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits-mlp.yaml"
RANDOMNESS = hashlib.sha256(b"bench/malformed").digest()
REPEATS = 3
HEADER_FACTOR = 32  # docs/proof.md: a parsed header takes at most 32 times its size
DAG_PATH_FACTOR = 8  # docs/store.md: a read holds one path's blocks, decoded

VALUES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "subnormal": lambda v: v * np.float32(2.0**-130),
    "half_subnormal": lambda v: np.where(
        np.arange(v.size).reshape(v.shape) % 2 == 0, v, v * np.float32(2.0**-140)
    ),
    "nan": lambda v: np.full_like(v, np.nan),
    "inf": lambda v: np.full_like(v, np.inf),
    "huge": lambda v: v * np.float32(1e37),
}


def run(spec_path: Path = EXAMPLE, repeats: int = REPEATS) -> dict[str, Any]:
    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-malformed-") as scratch:
        store = EmbeddedStore(Path(scratch) / "store", fsync=False)
        task = open_task(spec, store)
        spec_cid = store.put_bytes(spec.canonical_bytes())
        honest = train(task, store, get_backend("native"), spec_cid=spec_cid)
        replayer = Replayer(get_backend(default_replay_backend()))
        figures: dict[str, Any] = {
            "example": spec_path.name,
            "replayer": replayer.backend.describe(),
            "repeats": repeats,
        }
        figures.update(_crafts(spec, task, store, spec_cid, honest, replayer, repeats))
        figures["replay_from_values"] = _values(task, store, honest, repeats)
    ratios = [v["over_honest"] for b in figures["replay_from_values"].values() for v in b.values()]
    figures["worst_replay_over_honest"] = max(ratios)
    return figures


def _check(
    task: Task, store: EmbeddedStore, spec_cid: str, manifest: bytes, replayer: Replayer
) -> str | None:
    """What the verifier's agent does with a committed manifest: the fault found, if any."""
    limit = artifact_limits(task.spec).manifest
    try:
        parsed = parse_manifest(manifest, limit=limit)
    except VeritrainError:
        return "manifest"
    verdict = verify(task, parsed, store, RANDOMNESS, replayer, spec_cid=spec_cid)
    return None if verdict.fault is None else verdict.fault.kind


def _timed(run: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """``run()``'s result and its median wall-clock and CPU seconds."""
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        result = run()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return result, statistics.median(walls), statistics.median(cpus)


def _peak(run: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        run()
        return int(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _crafts(
    spec: TaskSpec,
    task: Task,
    store: EmbeddedStore,
    spec_cid: str,
    honest: Manifest,
    replayer: Replayer,
    repeats: int,
) -> dict[str, Any]:
    proofs = {name: craft(name, spec, store, honest) for name in sorted(CRAFTS)}
    proofs["dag-empty-leaves"] = _dag_empty_leaves(store, honest)

    def checking(manifest: bytes) -> Callable[[], str | None]:
        return lambda: _check(task, store, spec_cid, manifest, replayer)

    honest_bytes = _manifest_bytes(honest)
    checking(honest_bytes)()  # warm-up (the exact kernels compile on first use)
    fault, honest_s, honest_cpu = _timed(checking(honest_bytes), repeats)
    assert fault is None, f"the honest proof was rejected ({fault})"
    honest_peak = _peak(checking(honest_bytes))
    crafts: dict[str, Any] = {}
    for name, proof in proofs.items():
        fault, wall, cpu = _timed(checking(proof.manifest), repeats)
        peak = _peak(checking(proof.manifest))
        crafts[name] = {
            "fault": fault,
            "expected_fault": proof.fault,
            "verify_s": round(wall, 4),
            "verify_cpu_s": round(cpu, 4),
            "time_over_honest": round(cpu / honest_cpu, 4),
            "peak_bytes": peak,
            "extra_peak_bytes": max(0, peak - honest_peak),
        }
    limits = artifact_limits(spec)
    bound = (
        max(limits.checkpoint, limits.manifest, limits.model, limits.batches)
        + HEADER_FACTOR * max(limits.checkpoint_header, limits.model_header, limits.manifest)
        + DAG_PATH_FACTOR * MAX_PATH_BYTES
    )
    worst_extra = max(c["extra_peak_bytes"] for c in crafts.values())
    return {
        "honest_verify_s": round(honest_s, 4),
        "honest_verify_cpu_s": round(honest_cpu, 4),
        "honest_peak_bytes": honest_peak,
        "crafts": crafts,
        "worst_time_over_honest": max(c["time_over_honest"] for c in crafts.values()),
        "worst_extra_peak_bytes": worst_extra,
        "memory_bound_bytes": bound,
        "within_memory_bound": worst_extra <= bound,
        "faults_as_expected": all(c["fault"] == c["expected_fault"] for c in crafts.values()),
    }


def _manifest_bytes(manifest: Manifest) -> bytes:
    return canonical_json(manifest.to_json())


def _dag_empty_leaves(store: EmbeddedStore, honest: Manifest) -> MalformedProof:
    """The honest proof whose final model is two blocks linking an empty leaf 4,000,000
    times (blocks put straight into the store, as a peer could serve them)."""
    child, tsize = CID(1, RAW, hashlib.sha256(b"").digest()), 0
    store._blocks.put(child, [b""])
    for _ in range(2):
        block = encode_node([(child.to_bytes(), tsize)] * 2000, encode_inner(0, [0] * 2000))
        child = CID(0, DAG_PB, hashlib.sha256(block).digest())
        store._blocks.put(child, [block])
        tsize = len(block) + 2000 * tsize
    crafted = honest.model_copy(update={"final_model": str(child)})
    return MalformedProof(
        "dag-empty-leaves", _manifest_bytes(crafted), honest.checkpoint_root, "malformed"
    )


def _values(
    task: Task, store: EmbeddedStore, honest: Manifest, repeats: int
) -> dict[str, dict[str, Any]]:
    start: State = dict(decode_checkpoint(store.get_bytes(honest.checkpoints[1].cid)))
    batches = task.segment_batches(1)
    backends = [get_backend("native", threads=1)]
    if backend_available("exact"):
        backends.insert(0, get_backend("exact"))
    figures: dict[str, dict[str, Any]] = {}
    for backend in backends:
        _replay(task, backend, start, batches)  # warm-up
        honest_cpu = min(_replay(task, backend, start, batches) for _ in range(repeats))
        rows: dict[str, Any] = {"honest": {"cpu_s": round(honest_cpu, 4), "over_honest": 1.0}}
        for name, change in VALUES.items():
            state = {
                key: value
                if key == STEP
                else change(value).astype(np.float32)
                if value.dtype == np.float32
                else value
                for key, value in start.items()
            }
            cpu = min(_replay(task, backend, state, batches) for _ in range(repeats))
            rows[name] = {"cpu_s": round(cpu, 4), "over_honest": round(cpu / honest_cpu, 4)}
        figures[backend.describe()] = rows
    return figures


def _replay(task: Task, backend: Backend, state: State, batches: np.ndarray) -> float:
    cpu = time.process_time()
    with np.errstate(all="ignore"), contextlib.suppress(FloatingPointError):
        session = backend.start(task, state)
        session.run(batches)
        session.state()
    return time.process_time() - cpu
