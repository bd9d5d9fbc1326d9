"""An agent's job progress feeds its metrics: steps trained (not again after a restart) and
segments replayed."""

from __future__ import annotations

from agents.commitment import Digest, Root
from agents.node.metrics import AgentMetrics
from agents.node.progress import ProgressDisplay
from agents.roles.agent import JobProgress
from agents.roles.jobs import ReplayJob, TrainJob
from agents.roles.situation import Start


def _value(metrics: AgentMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_training_counts_the_steps_it_trains() -> None:
    metrics = AgentMetrics("solver")
    start = Start("train/4", 4, TrainJob(spec_cid="Qm"), "claimed")
    progress = JobProgress(start, metrics, ProgressDisplay("never"))
    progress(20, 100)  # resumed after 20 steps trained before a restart
    for done in range(21, 41):
        progress(done, 100)
    assert _value(metrics, "veritrain_training_steps_total") == 20
    assert _value(metrics, "veritrain_training_progress", task="4") == 0.4
    assert _value(metrics, "veritrain_replay_segments_total") == 0


def test_replay_counts_segments() -> None:
    metrics = AgentMetrics("verifier")
    job = ReplayJob(
        "Qm", "Qm", Root(bytes(32)), Digest(bytes(32)), segments=10, sampled=1, threshold=0
    )
    progress = JobProgress(Start("replay/4", 4, job, "claimed"), metrics, ProgressDisplay("never"))
    for done in (1, 2, 3):
        progress(done, 3)
    assert _value(metrics, "veritrain_replay_segments_total") == 3
    assert _value(metrics, "veritrain_training_steps_total") == 0
