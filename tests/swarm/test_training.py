"""Training one task across worker processes: exact mode stays exact.

The task's ``parallel`` section fixes how a step's batch splits into slices and
the order in which their gradients are summed; a swarm of any size computes that
same sum, so its proof is the proof one process writes, byte for byte.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pytest

from agents.learning import datasets
from agents.learning.backends import BackendError, get_backend
from agents.learning.solver import train
from agents.learning.spec import SpecError, TaskSpec, parse_spec
from agents.learning.task import Task
from agents.store import open_store
from agents.swarm.pipeline import shares
from agents.swarm.training import SwarmBackend, placement_devices

SPEC: dict[str, Any] = {
    "version": 1,
    "name": "pinned",
    "loss": "cross_entropy",
    "dataset": {
        "cid": "Qm" + "a" * 44,
        "source": {
            "builtin": "synthetic-classification",
            "samples": 96,
            "features": 6,
            "classes": 3,
            "seed": 5,
        },
    },
    "model": {"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3},
    "optimizer": {"kind": "adam"},
    "schedule": {"kind": "constant", "lr": 0.01},
    "steps": 8,
    "batch_size": 8,
    "seed": 3,
    "checkpoint_interval": 2,
    "verification": {"segments": 2, "tolerance": "exact"},
}
# The hash of SPEC as the spec code computed it before the parallel section (and
# model.activation) existed.
PINNED_HASH = "8c5587777458fd4e0790f1325e3891698e7758ad6afa7f13c57bcee4f2a061fe"


def _spec(**overrides: Any) -> TaskSpec:
    data = copy.deepcopy(SPEC)
    data.update(overrides)
    return parse_spec(data)


def _task(**overrides: Any) -> Task:
    spec = _spec(**overrides)
    assert spec.dataset.source is not None
    return Task.bind(spec, datasets.build(spec.dataset.source))


def test_a_spec_without_parallel_hashes_as_before() -> None:
    spec = _spec()
    assert spec.spec_hash().hex() == PINNED_HASH
    assert b"parallel" not in spec.canonical_bytes()
    split = _spec(parallel={"microbatches": 4})
    assert b'"parallel":{"microbatches":4}' in split.canonical_bytes()
    assert split.spec_hash() != spec.spec_hash()


def test_slices_must_divide_the_batch() -> None:
    with pytest.raises(SpecError, match=r"parallel\.microbatches"):
        _spec(parallel={"microbatches": 3})


@pytest.mark.parametrize(("slices", "workers"), [(4, 1), (4, 2), (4, 4), (5, 2), (7, 3)])
def test_shares_are_contiguous_and_cover_every_slice(slices: int, workers: int) -> None:
    got = shares(slices, workers)
    assert [first for first, _ in got] == [sum(c for _, c in got[:r]) for r in range(workers)]
    assert sum(count for _, count in got) == slices
    assert max(c for _, c in got) - min(c for _, c in got) <= 1


def _proof(task: Task, backend: Any, tmp_path: Any, name: str) -> dict[str, Any]:
    store = open_store(str(tmp_path / name))
    manifest = train(task, store, backend)
    return manifest.model_dump(mode="json")


def test_one_two_and_four_workers_write_the_same_proof(tmp_path: Any) -> None:
    task = _task(parallel={"microbatches": 4}, steps=4)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    for workers in (1, 2, 4):
        swarm = _proof(task, SwarmBackend(workers=workers), tmp_path, f"swarm{workers}")
        assert swarm == alone, workers


def _trains_like_one_process(task: Task) -> None:
    """Two native workers train ``task``'s first four steps to the state one native process
    reaches, to float tolerance (native kernels promise no bit-exactness across a split)."""
    batches = task.batches(0, 4)
    one = get_backend("native").start(task, task.initial_state())
    one.run(batches)
    session = SwarmBackend(workers=2, inner="native").start(task, task.initial_state())
    try:
        session.run(batches)
        got = session.state()
    finally:
        session.close()
    for name, value in one.state().items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_a_tolerant_swarm_trains_like_one_process(tmp_path: Any) -> None:
    spec = copy.deepcopy(SPEC)
    spec["verification"] = {"segments": 2, "tolerance": "tolerant", "tau": 0.01}
    task = _task(parallel={"microbatches": 4}, steps=4, verification=spec["verification"])
    _trains_like_one_process(task)


AQ = {"method": "aq", "bits": 2, "backward_bits": 4, "samples": 96}


def _staged(**parallel: Any) -> Task:
    """SPEC with three layers, so that it cuts into up to three stages."""
    model = {"kind": "mlp", "inputs": 6, "hidden": [8, 8], "outputs": 3}
    return _task(model=model, steps=4, parallel=parallel)


def test_a_pipeline_with_aq_compression_writes_the_same_proof(tmp_path: Any) -> None:
    task = _staged(microbatches=4, stages=2, compression=AQ)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    swarm = _proof(task, SwarmBackend(workers=2), tmp_path, "swarm")
    assert swarm == alone


@pytest.mark.slow
@pytest.mark.parametrize(
    ("workers", "stages", "parallel"),
    [
        # two pipelines of two stages: AQ-SGD's buffers shared within each stage's group
        (4, 2, {"microbatches": 4, "stages": 2, "compression": AQ}),
        (3, 3, {"microbatches": 4, "stages": 3, "compression": {"method": "direct", "bits": 3}}),
        # without compression the cuts change nothing: the swarm picks its own depth
        (6, 3, {"microbatches": 4}),
        (4, 1, {"microbatches": 4, "stages": 3}),
        (2, 2, None),  # a spec without a parallel section, pipelined
    ],
)
def test_pipelines_of_every_shape_write_the_same_proof(
    tmp_path: Any, workers: int, stages: int, parallel: dict[str, Any] | None
) -> None:
    model = {"kind": "mlp", "inputs": 6, "hidden": [8, 8], "outputs": 3}
    task = _task(model=model, steps=4) if parallel is None else _staged(**parallel)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    swarm = _proof(task, SwarmBackend(workers=workers, stages=stages), tmp_path, "swarm")
    assert swarm == alone


@pytest.mark.slow
def test_a_tolerant_pipeline_trains_like_one_process() -> None:
    task = _staged(microbatches=2, stages=2, compression=AQ)
    _trains_like_one_process(task)


@pytest.mark.slow
def test_an_emulated_latency_delays_every_message() -> None:
    task = _staged(microbatches=2, stages=2)
    session = SwarmBackend(workers=2, latency_s=0.5).start(task, task.initial_state())
    try:
        started = time.monotonic()
        session.run(task.batches(0, 2))
        elapsed = time.monotonic() - started
    finally:
        session.close()
    # A step's first slice crosses the cut forward and its gradient comes back: 2 × 0.5 s.
    assert elapsed >= 2.0, elapsed


def test_a_worker_that_dies_fails_the_session_and_stops_the_others() -> None:
    task = _staged(microbatches=2, stages=2)
    session = SwarmBackend(workers=2).start(task, task.initial_state())
    processes = list(session._processes)
    processes[1].kill()
    started = time.monotonic()
    with pytest.raises(BackendError, match="swarm worker"):
        session.run(task.batches(0, 2))
    assert time.monotonic() - started < 60
    assert all(p.poll() is not None for p in processes)


def test_what_a_swarm_refuses() -> None:
    plain = _task()
    with pytest.raises(BackendError, match="no parallel section"):
        SwarmBackend(workers=2).start(plain, plain.initial_state())
    split = _task(parallel={"microbatches": 2})
    with pytest.raises(BackendError, match="cannot share"):
        SwarmBackend(workers=4).start(split, split.initial_state())
    with pytest.raises(BackendError, match="traces"):
        SwarmBackend(workers=1).start(split, split.initial_state(), trace=True)
    with pytest.raises(BackendError, match="exact or native"):
        SwarmBackend(inner="swarm")
    with pytest.raises(BackendError, match="do not form pipelines of 2 stages"):
        SwarmBackend(workers=3, stages=2)
    compressed = _staged(microbatches=2, stages=2, compression=AQ)
    with pytest.raises(BackendError, match="cannot train it"):
        SwarmBackend(workers=3, stages=3).start(compressed, compressed.initial_state())
    with pytest.raises(BackendError, match="cannot be cut into 4 stages"):
        SwarmBackend(workers=4, stages=4).start(split, split.initial_state())
    with pytest.raises(BackendError, match="need the swarm's key"):
        SwarmBackend(workers=2, listen="127.0.0.1:1")


@pytest.mark.slow
def test_workers_started_elsewhere_join_by_device_name(tmp_path: Any) -> None:
    import os
    import secrets
    import subprocess
    import sys
    import threading

    from agents.swarm.plan import FORMAT, PlanFile
    from agents.swarm.training import _free_port

    task = _staged(microbatches=2, stages=2, compression=AQ)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    plan = PlanFile(format=FORMAT, stages=2, replicas=1, pipelines=[["far-b", "far-a"]])
    key = secrets.token_bytes(32)
    port = _free_port("127.0.0.1")
    address = f"127.0.0.1:{port}"
    env = dict(os.environ, VERITRAIN_SWARM_KEY=key.hex(), GLOO_SOCKET_IFNAME="lo")
    command = [sys.executable, "-m", "agents.swarm.worker", address]
    intruder = dict(env, VERITRAIN_SWARM_KEY="00" * 32)
    workers: list[subprocess.Popen[bytes]] = []

    def start_workers() -> None:
        time.sleep(2)  # the session listens first
        workers.append(subprocess.Popen([*command, "far-x"], env=intruder))
        for name in ("far-a", "far-b"):
            workers.append(subprocess.Popen([*command, name], env=env))

    starter = threading.Thread(target=start_workers)
    starter.start()
    try:
        backend = SwarmBackend(listen=address, key=key, plan=plan)
        swarm = _proof(task, backend, tmp_path, "swarm")
    finally:
        starter.join()
        statuses = [w.wait(timeout=60) for w in workers]
    assert swarm == alone
    assert statuses == [1, 0, 0]  # the wrong key is refused; the others end with the session


@pytest.mark.parametrize(
    ("device", "world", "local", "gpus", "comm", "devices"),
    [
        ("cpu", 3, True, 0, "gloo", ["cpu"] * 3),
        ("cpu", 2, False, 4, "gloo", ["cpu"] * 2),
        # one GPU each: NCCL
        ("cuda", 2, True, 2, "nccl", ["cuda:0", "cuda:1"]),
        ("cuda", 2, True, 4, "nccl", ["cuda:0", "cuda:1"]),
        # more local workers than GPUs: NCCL would refuse two ranks on one GPU
        ("cuda", 2, True, 1, "gloo", ["cuda:0", "cuda:0"]),
        ("cuda", 3, True, 2, "gloo", ["cuda:0", "cuda:1", "cuda:0"]),
        ("cuda:1", 2, True, 2, "gloo", ["cuda:1", "cuda:1"]),
        ("cuda:1", 1, True, 2, "nccl", ["cuda:1"]),
        # workers elsewhere: each on its own machine's GPU
        ("cuda", 4, False, 1, "nccl", ["cuda"] * 4),
    ],
)
def test_workers_on_gpus_share_them_and_use_nccl_only_one_to_a_gpu(
    device: str, world: int, local: bool, gpus: int, comm: str, devices: list[str]
) -> None:
    assert placement_devices(device, world, local=local, gpus=gpus) == (comm, devices)
