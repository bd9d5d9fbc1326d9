"""The agents' local jobs against a real store and real training: train, then replay a proof
through every branch of the replay job; the warm-up; the work runner."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.commitment import Digest, Root
from agents.exact.float32 import from_bits32
from agents.learning import faults
from agents.learning.cheats import replace_checkpoint
from agents.learning.malformed import CRAFTS, craft
from agents.learning.proof import decode_checkpoint, parse_manifest
from agents.learning.verifier import Fault
from agents.roles.admission import TermsMismatchError
from agents.roles.hardware import Hardware
from agents.roles.jobs import (
    DriftJob,
    DriftResult,
    ProfileJob,
    ProfileResult,
    ReplayJob,
    TrainJob,
    TrainResult,
    result_from_json,
)
from agents.roles.report import UNREPLAYABLE
from agents.roles.runner import WorkRunner
from agents.roles.work import drift_job, load_task, profile_job, replay_job, train_job, warm_up
from agents.store import ArtifactStore, BackendError, cid_of_bytes, open_store
from agents.store.embedded import EmbeddedStore
from tests.learning.conftest import real_spec

CPU = Hardware(device="cpu", threads=1)
RANDOMNESS = Digest(bytes(range(32)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ArtifactStore, str, TrainResult]:
    """A tiny exact-mode task trained by the solver's job into a store of its own."""
    root = tmp_path_factory.mktemp("work")
    store = open_store(root / "store")
    spec = real_spec(
        steps=12,
        checkpoint_interval=4,
        verification={"segments": 2, "tolerance": "exact"},
    )
    spec_cid = store.put_bytes(spec.canonical_bytes())
    result = train_job(store, TrainJob(spec_cid=spec_cid), root / "work", CPU)
    return store, spec_cid, result


def _job(trained: tuple[ArtifactStore, str, TrainResult], **changes: Any) -> ReplayJob:
    _store, spec_cid, result = trained
    fields: dict[str, Any] = {
        "spec_cid": spec_cid,
        "proof_cid": result.proof_cid,
        "checkpoint_root": result.checkpoint_root,
        "randomness": RANDOMNESS,
        "segments": 3,  # S = 3 and s = 2: the sample is every segment
        "sampled": 2,
        "threshold": 0,
    }
    fields.update(changes)
    return ReplayJob(**fields)


def test_training_stores_a_proof_that_commits_to_its_checkpoints(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store, _spec_cid, result = trained
    manifest = parse_manifest(store.get_bytes(result.proof_cid))
    assert result.segments == 3 == len(manifest.segments)
    assert result.checkpoint_root == Root.parse(manifest.checkpoint_root)


def test_an_honest_proof_passes_with_zero_distances(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store = trained[0]
    report = replay_job(store, _job(trained), CPU)
    assert report.verdict == "pass" and report.reasons == ()
    assert report.distances == (0, 0, 0) and report.extra_segments == ()


@pytest.mark.parametrize(
    "terms",
    [
        {"segments": 4},
        {"segments": 2},
        {"sampled": 3},
        {"sampled": 1},
        {"segments": 4, "sampled": 9},
    ],
    ids=["S above", "S below", "s above", "s below", "both"],
)
def test_terms_on_chain_that_are_not_the_specs_are_never_the_solvers_fault(
    trained: tuple[ArtifactStore, str, TrainResult], terms: dict[str, int]
) -> None:
    """The submitter recorded S and s; the honest proof follows the spec. No report (so no
    fault record against the solver) comes out of the replay."""
    store = trained[0]
    pins = set(store.pins())
    with pytest.raises(TermsMismatchError, match="the submitter's inconsistency"):
        replay_job(store, _job(trained, **terms), CPU)
    assert set(store.pins()) == pins  # no fault record was published
    # The same proof under the spec's own terms passes.
    assert replay_job(store, _job(trained), CPU).verdict == "pass"


def test_an_unparseable_manifest_fails_every_segment(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store = trained[0]
    garbage = store.put_bytes(b"{not a manifest")
    report = replay_job(store, _job(trained, proof_cid=garbage), CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3
    assert report.reasons and f"proof {garbage}" in report.reasons[0]


def test_a_proof_cid_that_is_no_cid_fails_every_segment(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store = trained[0]
    report = replay_job(store, _job(trained, proof_cid="not-a-cid"), CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3


def test_a_checkpoint_root_other_than_the_committed_one_fails(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store = trained[0]
    report = replay_job(store, _job(trained, checkpoint_root=Root(bytes(31) + b"\x01")), CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3
    assert "not the one committed on chain" in report.reasons[0]


def test_a_rejection_before_replay_fails_every_segment(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store, _spec_cid, result = trained
    manifest = parse_manifest(store.get_bytes(result.proof_cid))
    start = dict(decode_checkpoint(store.get_bytes(manifest.checkpoints[0].cid), "checkpoint 0"))
    name = next(n for n in start if n.startswith("param/"))
    start[name] = start[name] + 1  # checkpoint 0 is no longer the seed's initialization
    forged = replace_checkpoint(store, manifest, 0, start)
    cid = store.put_json(forged.to_json())
    job = _job(trained, proof_cid=cid, checkpoint_root=Root.parse(forged.checkpoint_root))
    report = replay_job(store, job, CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3
    assert "initialization" in report.reasons[0]


def test_a_forged_segment_fails_with_a_positive_distance(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store, _spec_cid, result = trained
    manifest = parse_manifest(store.get_bytes(result.proof_cid))
    # Every segment's end is forged, so whichever are sampled fail.
    forged = manifest
    for index in range(1, len(manifest.checkpoints)):
        entry = forged.checkpoints[index]
        state = dict(decode_checkpoint(store.get_bytes(entry.cid), f"checkpoint {index}"))
        name = next(n for n in state if n.startswith("param/"))
        state[name] = state[name] * 1.5
        forged = replace_checkpoint(store, forged, index, state)
    cid = store.put_json(forged.to_json())
    job = _job(trained, proof_cid=cid, checkpoint_root=Root.parse(forged.checkpoint_root))
    report = replay_job(store, job, CPU)
    assert report.verdict == "fail"
    assert all(d > 0 for d in report.distances)


class TwoCores(Hardware):
    """This machine's CPU with its kernels on one thread each, as a verifier with two
    cores: two segments replayed at once, the sample's while the checkpoints are read."""

    def cores(self) -> int:
        return 2


def test_segments_replayed_side_by_side_give_the_same_report(
    trained: tuple[ArtifactStore, str, TrainResult], caplog: pytest.LogCaptureFixture
) -> None:
    store, _spec_cid, result = trained
    honest = parse_manifest(store.get_bytes(result.proof_cid))
    forged = honest  # every segment's end forged: each fails
    for index in range(1, len(honest.checkpoints)):
        entry = forged.checkpoints[index]
        state = dict(decode_checkpoint(store.get_bytes(entry.cid), f"checkpoint {index}"))
        name = next(n for n in state if n.startswith("param/"))
        state[name] = state[name] * (1 + index / 4)
        forged = replace_checkpoint(store, forged, index, state)
    # Checkpoint 2 names checkpoint 1's artifact: rejected as it is read, once segment 0,
    # whose checkpoints are read, may have begun.
    lying = honest.model_copy(
        update={
            "checkpoints": [
                c.model_copy(update={"cid": honest.checkpoints[1].cid}) if c.index == 2 else c
                for c in honest.checkpoints
            ]
        }
    )
    # The last segment's batches do not decode: read as its checkpoints are, the fault comes
    # after the replays of the segments before it, whose trace roots the report holds.
    broken = store.put_bytes(b"not batches")
    batches = honest.model_copy(
        update={
            "segments": [
                s.model_copy(update={"batches": broken}) if s.index == 2 else s
                for s in honest.segments
            ]
        }
    )
    verdicts = []
    for manifest in (honest, forged, lying, batches):
        cid = store.put_json(manifest.to_json())
        job = _job(trained, proof_cid=cid, checkpoint_root=Root.parse(manifest.checkpoint_root))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="agents.roles.work"):
            one = replay_job(store, job, CPU)
            two = replay_job(store, job, TwoCores(device="cpu", threads=1))
        assert two == one and two.to_json() == one.to_json()
        times = [r for r in caplog.records if r.getMessage() == "verification times"]
        replayed = {id(lying): 0, id(batches): 2}.get(id(manifest), 3)
        assert [getattr(r, "fields", {})["segments"] for r in times] == [replayed, replayed]
        verdicts.append((one.verdict, one.distances))
    (passed, zeros), (failed, positive), (rejected, unreplayable), (late, prefix) = verdicts
    assert passed == "pass" and zeros == (0, 0, 0)
    assert failed == "fail" and all(d > 0 for d in positive), positive
    assert rejected == "fail" and unreplayable == (UNREPLAYABLE,) * 3
    assert late == "fail" and prefix == (0, 0, UNREPLAYABLE) and "batches" in one.reasons[0]


def test_profile_and_own_drift_of_a_tolerant_task(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    spec = real_spec(
        model={"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3, "activation": "silu"},
        verification={"segments": 3, "tau": 0.01},
    )
    spec_cid = store.put_bytes(spec.canonical_bytes())
    profiled = profile_job(store, ProfileJob(spec_cid=spec_cid, budget=0.5), CPU)
    assert from_bits32(profiled.threshold) == pytest.approx(profiled.tau, rel=1e-7)
    document = json.loads(store.get_bytes(profiled.profile_cid))
    assert document["spec"] == spec_cid and document["tau"] == profiled.tau
    assert document["budget"] == 0.5 and document["exceed_probability"] <= 1.001e-6
    own = drift_job(store, DriftJob(spec_cid=spec_cid, budget=0.5), CPU)
    assert own.model is not None and 0 < own.max_drift < profiled.tau
    assert own.rejection_risk(profiled.tau, 3) < 1e-4
    assert own.rejection_risk(own.max_drift / 2, 3) == 1.0
    assert result_from_json("drift", json.loads(json.dumps(own.to_json()))) == own
    assert result_from_json("drift", DriftResult(0.0, None).to_json()) == DriftResult(0.0, None)
    # A one-sided divergence (+inf) is kept as such by the work table's JSON, and rules out.
    diverged = DriftResult(math.inf, own.model)
    assert result_from_json("drift", json.loads(json.dumps(diverged.to_json()))) == diverged
    assert diverged.rejection_risk(3.4e38, 3) == 1.0


def test_warm_up_runs_the_exact_engine_traced_and_untraced_to_one_state() -> None:
    # A verifier's warm-up replays traced as well; tracing never changes the arithmetic.
    untraced, traced = warm_up(CPU, trace=True)
    assert len(untraced) == 32 and untraced == traced
    assert warm_up(CPU, trace=False) == [untraced]


def test_warm_up_computes_a_program_root_as_a_claim_s_examination_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A solver's first examination must not load (or compile) the program's hashing kernels.
    from agents.dispute import programs

    roots: list[bytes] = []
    compute = programs.program_root_of

    def recorded(task: Any) -> bytes:
        roots.append(compute(task))
        return roots[-1]

    monkeypatch.setattr(programs, "program_root_of", recorded)
    warm_up(CPU, trace=False)
    assert len(roots) == 1 and len(roots[0]) == 32


_FIRST_JOB = """
import sys
from pathlib import Path
from agents.roles.hardware import Hardware
from agents.roles.jobs import TrainJob
from agents.roles.work import train_job, warm_up
from agents.store import open_store
from tests.learning.conftest import real_spec

cpu = Hardware(device="cpu", threads=1)
warm_up(cpu, trace=False)
root = Path(sys.argv[1])
store = open_store(root / "store")
spec = real_spec(steps=8, checkpoint_interval=4, verification={"segments": 2, "tolerance": "exact"})
spec_cid = store.put_bytes(spec.canonical_bytes())
loaded = set(sys.modules)
train_job(store, TrainJob(spec_cid=spec_cid), root / "work", cpu)
print(" ".join(sorted(m for m in set(sys.modules) - loaded if m.startswith("agents."))))
"""


def test_a_first_training_job_after_the_warm_up_imports_nothing_of_the_agents(
    tmp_path: Path,
) -> None:
    # A fresh process, as an agent's: its first job starts its steps without loading modules.
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_JOB, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def _result() -> ProfileResult:
    return ProfileResult(threshold=1, profile_cid="Qm", tau=1.0)


def _crash() -> ProfileResult:
    raise ZeroDivisionError("a bug")


@pytest.mark.parametrize(("job", "status"), [(_result, "done"), (_crash, "failed")])
def test_work_runner_calls_back_once_the_state_is_final(job: Any, status: str) -> None:
    # The agent's loop wakes on this callback instead of waiting out its poll interval.
    finished = threading.Event()
    seen: list[str] = []

    def on_finished() -> None:
        seen.append(runner.states()["k"].status)
        finished.set()

    runner = WorkRunner(on_finished=on_finished)
    runner.start("k", job)
    assert finished.wait(10.0)
    assert seen == [status]
    assert runner.running() == []
    state = runner.states()["k"]
    assert (
        (state.result == _result()) if status == "done" else "ZeroDivisionError" in str(state.error)
    )


def test_work_runner_runs_a_key_once_at_a_time() -> None:
    release = threading.Event()
    calls: list[int] = []

    def job() -> ProfileResult:
        calls.append(1)
        release.wait(10.0)
        return _result()

    runner = WorkRunner()
    runner.start("k", job)
    runner.start("k", job)  # already running: ignored
    assert runner.running() == ["k"]
    release.set()
    for _ in range(200):
        if not runner.running():
            break
        threading.Event().wait(0.01)
    assert calls == [1]
    runner.forget("k")
    assert runner.states() == {}


def test_work_runner_counts_the_cpu_of_its_jobs_thread() -> None:
    # A job that computes uses CPU on its thread; one that waits uses almost none, and work
    # on a thread the job starts is not counted.
    def run(key: str, job: Any) -> float:
        finished = threading.Event()
        runner = WorkRunner(on_finished=finished.set)
        runner.start(key, job)
        assert finished.wait(10.0)
        cpu = runner.cpu(key)
        runner.forget(key)
        assert runner.cpu(key) == 0.0
        return cpu

    def spin(seconds: float) -> None:
        started = time.thread_time()
        while time.thread_time() - started < seconds:
            pass

    def computes() -> ProfileResult:
        spin(0.2)
        return _result()

    def waits() -> ProfileResult:
        helper = threading.Thread(target=spin, args=(0.2,))
        helper.start()
        helper.join()
        return _result()

    assert run("computes", computes) >= 0.2
    assert run("waits", waits) < 0.1


def test_workdir_is_where_training_resumes(tmp_path: Path) -> None:
    store = open_store(tmp_path / "store")
    spec = real_spec(steps=8, checkpoint_interval=4, verification={"segments": 2})
    spec_cid = store.put_bytes(spec.canonical_bytes())
    first = train_job(store, TrainJob(spec_cid=spec_cid), tmp_path / "w", CPU)
    assert (tmp_path / "w" / "journal.json").exists()
    seen: list[int] = []
    again = train_job(
        store, TrainJob(spec_cid=spec_cid), tmp_path / "w", CPU, lambda d, t: seen.append(d)
    )
    assert again == first
    assert seen == [8]  # resumed at the end: nothing trained again


@pytest.mark.parametrize("name", sorted(CRAFTS))
def test_a_malformed_proof_gets_a_failing_report_that_commits_to_its_fault(
    trained: tuple[ArtifactStore, str, TrainResult], name: str
) -> None:
    store, spec_cid, result = trained
    task = load_task(store, spec_cid)
    manifest = parse_manifest(store.get_bytes(result.proof_cid))
    proof = craft(name, task.spec, store, manifest)
    proof_cid = store.put_bytes(proof.manifest)
    job = _job(trained, proof_cid=proof_cid, checkpoint_root=Root.parse(proof.checkpoint_root))
    report = replay_job(store, job, CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3
    assert report.fault_record is not None
    record = report.fault_record.encode()
    fault, named = faults.parse(record)
    assert fault.kind == proof.fault and named == proof_cid
    assert report.trace_roots == (Root(hashlib.sha256(record).digest()),) * 3
    # Published for whoever checks the claim, and the claim holds.
    assert cid_of_bytes(record) in store.pins()
    assert faults.confirm(task, store, record, spec_cid=spec_cid)


def test_the_verifiers_own_store_trouble_raises_for_a_retry(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    store, _spec_cid, result = trained

    class Unreachable(EmbeddedStore):
        def open(self, cid: str) -> Iterator[bytes]:
            if cid == result.proof_cid:
                raise BackendError("the node does not answer")
            return super().open(cid)

    flaky = Unreachable(store.root, fsync=False)  # type: ignore[attr-defined]
    with pytest.raises(BackendError, match="does not answer"):
        replay_job(flaky, _job(trained), CPU)


def test_a_manifest_nobody_serves_fails_instead_of_waiting_on_the_network(
    trained: tuple[ArtifactStore, str, TrainResult],
) -> None:
    """A Kubo node asked for content it does not hold looks for it on the network until its
    client times out, which is the store's own failure; the verifier asks first whether its
    store holds the manifest, so a committed CID that nobody serves fails the proof."""
    store, spec_cid, _result = trained

    class Networked(EmbeddedStore):
        def open(self, cid: str) -> Iterator[bytes]:
            if not self.has(cid):
                raise BackendError(f"Kubo block/get {cid}: read timed out")
            return super().open(cid)

    networked = Networked(store.root, fsync=False)  # type: ignore[attr-defined]
    nowhere = cid_of_bytes(b"a manifest that nobody serves")
    report = replay_job(networked, _job(trained, proof_cid=nowhere), CPU)
    assert report.verdict == "fail" and report.distances == (UNREPLAYABLE,) * 3
    assert report.fault_record is not None and "not available" in report.reasons[0]
    record = report.fault_record.encode()
    assert faults.parse(record) == (Fault("manifest"), nowhere)
    task = load_task(networked, spec_cid)
    assert faults.confirm(task, networked, record, spec_cid=spec_cid)
