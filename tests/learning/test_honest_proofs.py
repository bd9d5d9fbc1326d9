"""No honest proof is rejected: every example, trained honestly with every backend and
thread count, passes verification with every replay backend, on many samplings.

A false rejection robs the honest solver the protocol exists to protect, so each
example is trained for real by every honest solver and verified by ``verify`` as a
verifier would, with the spec's τ and with the τ the profiler proposes. Replays are
computed once per segment and replayer (both backends are deterministic on one
machine), so the samplings cost at most one replay of every segment each.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from agents.learning.backends import Backend, get_backend
from agents.learning.layout import State, step_of
from agents.learning.profiler import profile
from agents.learning.proof import ProofDirectory
from agents.learning.solver import train
from agents.learning.spec import load_spec
from agents.learning.task import Task, open_task
from agents.learning.verifier import Replay, Replayer, verify

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
SAMPLINGS = 20
MARGIN = 3  # every honest distance stays below τ / MARGIN
SEVERAL = min(os.cpu_count() or 1, 4)

SOLVERS = [
    pytest.param(("native", {"threads": 1}), id="native-1-thread"),
    pytest.param(("native", {"threads": max(SEVERAL, 2)}), id="native-threads"),
    pytest.param(("native", {"microbatches": 2}), id="native-microbatches"),
    pytest.param(("exact", {}), id="exact"),
    pytest.param(
        ("native", {"device": "cuda"}),
        id="native-cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]
REPLAYERS: list[tuple[str, dict[str, Any]]] = [("exact", {}), ("native", {"threads": 1})]


class OnceReplayer(Replayer):
    """Replays each segment once and answers later samplings of it from memory."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._replays: dict[int, State] = {}
        self.replayed = 0

    def replay(self, task: Task, start: State, batches: np.ndarray, trace: bool = False) -> Replay:
        key = step_of(start)
        if key not in self._replays:
            self._replays[key] = super().replay(task, start, batches).state
            self.replayed += 1
        return Replay(self._replays[key], None)


@pytest.fixture(scope="module")
def profiled_tau(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], float]:
    """The τ ``veritrain pol profile`` proposes for an example (profiled once each)."""
    taus: dict[Path, float] = {}

    def tau(path: Path) -> float:
        if path not in taus:
            spec = load_spec(path)
            data = ProofDirectory(tmp_path_factory.mktemp(spec.name), create=True)
            result = profile(open_task(spec, data))
            assert not result.warnings, result.warnings
            taus[path] = result.tau
        return taus[path]

    return tau


def _randomness(example: str, solver: str, replayer: str, i: int) -> bytes:
    return hashlib.sha256(f"honest/{example}/{solver}/{replayer}/{i}".encode()).digest()


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_honest_proof_passes_every_sampling(
    path: Path,
    solver: tuple[str, dict[str, Any]],
    tmp_path: Path,
    profiled_tau: Callable[[Path], float],
) -> None:
    spec = load_spec(path)
    store = ProofDirectory(tmp_path / "proof", create=True)
    task = open_task(spec, store)
    spec_cid = store.put_bytes(spec.canonical_bytes())
    trainer = get_backend(solver[0], **solver[1])
    manifest = train(task, store, trainer, spec_cid=spec_cid)
    assert spec.verification.tau is not None
    taus = {"spec": spec.verification.tau, "profile": profiled_tau(path)}
    for name, options in REPLAYERS:
        replayer = OnceReplayer(get_backend(name, **options))
        for i in range(SAMPLINGS):
            randomness = _randomness(path.stem, trainer.describe(), name, i)
            for which, tau in taus.items():
                verdict = verify(
                    task, manifest, store, randomness, replayer, spec_cid=spec_cid, tau=tau
                )
                context = (
                    f"{trainer.describe()} replayed by {replayer.backend.describe()}, "
                    f"{which} τ={tau:g}"
                )
                assert verdict.passed, f"{context}: {verdict.reasons}"
                assert len(verdict.segments) >= spec.verification.segments
                for segment in verdict.segments:
                    assert segment.distance <= tau / MARGIN, (
                        context,
                        segment.index,
                        segment.distance,
                    )
        assert 0 < replayer.replayed <= spec.segment_count
