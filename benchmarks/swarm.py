"""Swarm solvers: the scheduler on the paper's five scenarios, and pipelines on slow links.

``scheduler``: for each of DT-FM's five 64-GPU scenarios (``examples/swarm/``)
with GPT-3 1.3B in 8 stages × 8 data-parallel replicas, the predicted
communication time per iteration (the cost model, seconds) of the plan found by
``random`` (the cheapest of as many random plans as the paper's search scores),
``baseline`` (the paper's search: genetic algorithm, population 100, 4,900
offspring, cyclic local search) and ``ours`` (swap descent from structured
starts), with ``baseline_search_s`` and ``ours_search_s``, the wall time of each
search, measured in the same run; ``search_ratio`` = ours / baseline time.
The figure ``swarm_scheduler.png`` plots the three costs per scenario.

``exact_dp_identical``: whether the digits MLP in exact mode, its steps split into
four slices, trained by swarms of 1, 2 and 4 worker processes, writes the proof one
process writes (every manifest field).

``pipeline``: the tiny transformer (two blocks, one per stage) trained by a pipeline of
two worker processes, each in its own network namespace, at three bandwidths
(``unshaped``, ``10mbit``, ``1mbit``: ``tc tbf`` on every link, created and removed
here; fp32 sends 1.6 Mbit a step, which at 10 Mbit/s takes about twice as long as an
unshaped step computes and at 1 Mbit/s twenty times, the paper's slow-network regime)
with four treatments of what crosses the cut:
``fp32`` (sent in full), ``direct_2bit`` (activations quantized to 2 bits), ``aq_2bit``
and ``aq_4bit`` (AQ-SGD: the change since the sample's last pass quantized to 2 or 4
bits); gradients go back at twice the forward bits (4 or 8), except with fp32. Each:
``samples_per_s`` (training samples per second of wall time, start-up excluded),
``loss`` (the trained model's mean cross-entropy over the training set, computed as
training computes it) and ``worker_cpu_s`` (CPU seconds each worker used: what the step
costs the machine, which a loaded machine's wall time hides). The task fine-tunes over
many epochs of 256 windows (AQ-SGD sends a sample in full the first time it passes).
``loss_noise``: the spread (largest − smallest) of fp32's loss over three data-order
seeds, unshaped; ``goals`` compares against it. Needs root for the namespaces; without
it only ``unshaped`` runs (on loopback) and ``shaped`` says why. The figure
``swarm_pipeline.png`` plots the throughputs and the unshaped losses.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from agents.swarm.cost import weights
from agents.swarm.genetic import OFFSPRING, POPULATION
from agents.swarm.network import load_network
from agents.swarm.schedule import search
from agents.swarm.workload import load_model, workload_for

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "swarm"
RESULTS = HERE / "results"
SCENARIOS = (
    "datacenter-on-demand",
    "datacenter-spot",
    "multiple-datacenters",
    "regional-geo-distributed",
    "world-geo-distributed",
)
MODEL = "gpt3-1.3b"
SEED = 0


def scheduler_figures(
    population: int = POPULATION, offspring: int = OFFSPRING, seed: int = SEED
) -> dict[str, Any]:
    """The scheduler part of swarm.json."""
    model = load_model(EXAMPLES / f"{MODEL}.json")
    figures: dict[str, Any] = {}
    for scenario in SCENARIOS:
        network = load_network(EXAMPLES / f"{scenario}.json")
        w = weights(network, workload_for(model, network.size))
        sampled = search(w, "random", seed, samples=population + offspring)
        baseline = search(w, "genetic", seed, population=population, offspring=offspring)
        ours = search(w, "descent", seed)
        figures[scenario] = {
            "random": sampled.cost.total,
            "baseline": baseline.cost.total,
            "ours": ours.cost.total,
            "baseline_search_s": baseline.search_s,
            "ours_search_s": ours.search_s,
            "search_ratio": ours.search_s / baseline.search_s,
            "ours_data_parallel": ours.cost.data_parallel,
            "ours_pipeline": ours.cost.pipeline,
        }
        print(
            f"  {scenario}: random {sampled.cost.total:.2f} s, baseline "
            f"{baseline.cost.total:.2f} s ({baseline.search_s:.1f} s search), ours "
            f"{ours.cost.total:.2f} s ({ours.search_s:.2f} s search)",
            flush=True,
        )
    return figures


def exact_dp_identical(workers: tuple[int, ...] = (1, 2, 4)) -> bool:
    """Whether a small exact task trained by swarms of ``workers`` processes writes the proof
    one process writes (every manifest field: checkpoint CIDs and roots, final model)."""
    import tempfile

    from agents.learning import datasets
    from agents.learning.backends import get_backend
    from agents.learning.solver import train
    from agents.learning.spec import load_spec
    from agents.learning.task import Task
    from agents.store import open_store
    from agents.swarm.training import SwarmBackend

    spec = load_spec(EXAMPLES.parent / "digits-mlp.yaml")
    data = spec.model_dump(mode="json")
    data.update(
        steps=8, checkpoint_interval=2, batch_size=32, parallel={"microbatches": 4},
        schedule={"kind": "constant", "lr": 0.01},
        verification={"segments": 2, "tolerance": "exact"},
    )  # fmt: skip
    spec = type(spec).model_validate(data)
    assert spec.dataset.source is not None
    task = Task.bind(spec, datasets.build(spec.dataset.source))
    with tempfile.TemporaryDirectory() as tmp:
        alone = train(task, open_store(f"{tmp}/alone"), get_backend("exact", threads=1))
        for count in workers:
            swarm = train(task, open_store(f"{tmp}/swarm{count}"), SwarmBackend(workers=count))
            if swarm.model_dump(mode="json") != alone.model_dump(mode="json"):
                return False
    return True


PIPELINE_STEPS = 240
PIPELINE_SEED = 7
BANDWIDTHS: dict[str, float | None] = {"unshaped": None, "10mbit": 10.0, "1mbit": 1.0}
TREATMENTS: dict[str, dict[str, Any] | None] = {
    "fp32": None,
    "direct_2bit": {"method": "direct", "bits": 2, "backward_bits": 4},
    "aq_2bit": {"method": "aq", "bits": 2, "backward_bits": 4},
    "aq_4bit": {"method": "aq", "bits": 4, "backward_bits": 8},
}
STEP_TIMEOUT_S = 120.0


def pipeline_task(treatment: dict[str, Any] | None, steps: int, seed: int) -> Any:
    """The tiny transformer cut in two, over 256 windows of a generated text."""
    from agents.learning import datasets
    from agents.learning.spec import DatasetSource, parse_spec
    from agents.learning.task import Task

    context, windows = 32, 256
    source = {"builtin": "text", "samples": windows + context, "seed": 1}
    built = datasets.build(DatasetSource.model_validate(source))
    parallel: dict[str, Any] = {"microbatches": 4, "stages": 2}
    if treatment is not None:
        compression = dict(treatment)
        if compression["method"] == "aq":
            compression["samples"] = windows
        parallel["compression"] = compression
    spec = parse_spec(
        {
            "version": 1,
            "name": "pipeline-bench",
            "dataset": {"cid": datasets.dataset_cid(built), "source": source},
            "model": {
                "kind": "transformer", "vocab": 28, "context": context, "width": 48,
                "heads": 4, "layers": 2, "ff": 96,
            },
            "loss": "cross_entropy",
            "optimizer": {"kind": "adam"},
            "schedule": {"kind": "constant", "lr": 0.003},
            "steps": steps,
            "batch_size": 16,
            "seed": seed,
            "checkpoint_interval": steps,
            "verification": {"segments": 1, "tolerance": "tolerant", "tau": 0.01},
            "parallel": parallel,
        }
    )  # fmt: skip
    return Task.bind(spec, built)


def pipeline_run(task: Any, placements: Any) -> dict[str, Any]:
    """Train ``task`` with two native workers; throughput and the trained model's loss."""
    from agents.learning.backends import get_backend
    from agents.swarm.training import SwarmBackend

    backend = SwarmBackend(
        workers=2, inner="native", placements=placements, step_timeout_s=STEP_TIMEOUT_S
    )
    session = backend.start(task, task.initial_state())
    try:
        batches = task.batches(0, task.spec.steps)
        before = session.cpu_seconds()
        started = time.perf_counter()
        session.run(batches)
        elapsed = time.perf_counter() - started
        after = session.cpu_seconds()
        state = session.state()
    finally:
        session.close()
    judge = get_backend("native").start(task, state)
    loss = judge.loss(np.arange(task.samples))  # type: ignore[attr-defined]
    figures: dict[str, Any] = {
        "samples_per_s": batches.size / elapsed,
        "loss": loss,
        "seconds": elapsed,
    }
    if before is not None and after is not None:
        figures["worker_cpu_s"] = [b - a for a, b in zip(before, after, strict=True)]
    return figures


def pipeline_figures(
    steps: int = PIPELINE_STEPS,
    bandwidths: dict[str, float | None] | None = None,
    treatments: dict[str, dict[str, Any] | None] | None = None,
    seed: int = PIPELINE_SEED,
) -> dict[str, Any]:
    """The pipeline part of swarm.json (module docstring)."""
    from agents.swarm.netns import ShapedNetwork, unavailable

    bandwidths = BANDWIDTHS if bandwidths is None else bandwidths
    treatments = TREATMENTS if treatments is None else treatments
    reason = unavailable()
    figures: dict[str, Any] = {}
    for label, rate in bandwidths.items():
        if reason is not None and rate is not None:
            print(f"  {label}: {reason}", flush=True)
            continue
        figures[label] = {}
        for name, treatment in treatments.items():
            task = pipeline_task(treatment, steps, seed)
            if reason is None:
                with ShapedNetwork(2, rate) as network:
                    got = pipeline_run(task, network.placements())
            else:
                got = pipeline_run(task, None)
            figures[label][name] = got
            print(
                f"  {label} {name}: {got['samples_per_s']:.1f} samples/s, loss {got['loss']:.4f}",
                flush=True,
            )
    out: dict[str, Any] = {"bandwidths": figures, "steps": steps, "seed": seed}
    if reason is not None:
        out["shaped"] = reason
    if "fp32" in treatments and "unshaped" in figures:
        losses = [figures["unshaped"]["fp32"]["loss"]]
        for other in (seed + 1, seed + 2):
            losses.append(pipeline_run(pipeline_task(None, steps, other), None)["loss"])
        out["fp32_seed_losses"] = losses
        out["loss_noise"] = max(losses) - min(losses)
        out["goals"] = pipeline_goals(figures, out["loss_noise"])
    return out


def pipeline_goals(figures: dict[str, Any], noise: float) -> dict[str, Any]:
    """The goals, judged on the figures: AQ-SGD's loss within the noise of fp32's, direct
    2-bit's not, and AQ-SGD's throughput over fp32's at the lowest shaped bandwidth."""
    goals: dict[str, Any] = {}
    reference = figures["unshaped"]["fp32"]["loss"]
    for name in ("aq_2bit", "aq_4bit", "direct_2bit"):
        if name in figures["unshaped"]:
            gap = figures["unshaped"][name]["loss"] - reference
            goals[f"{name}_loss_gap"] = gap
            goals[f"{name}_within_noise"] = abs(gap) <= noise
    slowest = min(
        (label for label in figures if label != "unshaped"),
        key=lambda label: BANDWIDTHS.get(label) or float("inf"),
        default=None,
    )
    if slowest is not None and "fp32" in figures[slowest]:
        base = figures[slowest]["fp32"]["samples_per_s"]
        for name in ("aq_2bit", "aq_4bit"):
            if name in figures[slowest]:
                goals[f"{name}_speedup_at_{slowest}"] = (
                    figures[slowest][name]["samples_per_s"] / base
                )
    return goals


def plot_scheduler(figures: dict[str, Any], path: Path) -> None:
    """Bars: predicted communication per iteration, per scenario and scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures)
    methods = (
        ("random", "random", "#bbbbbb"),
        ("baseline", "DT-FM search", "#6a8caf"),
        ("ours", "ours", "#d9822b"),
    )
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.26
    for m, (key, label, color) in enumerate(methods):
        xs = [i + (m - 1) * width for i in range(len(names))]
        values = [figures[n][key] for n in names]
        bars = ax.bar(xs, values, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("-", "\n", 1) for n in names], fontsize=8)
    ax.set_ylabel("predicted communication per iteration (s)")
    ax.set_title("GPT-3 1.3B on 64 GPUs, 8 stages x 8 replicas: DT-FM's cost model")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pipeline(figures: dict[str, Any], path: Path) -> None:
    """Throughput per bandwidth and treatment; the trained loss per treatment (unshaped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(figures)
    names = list(TREATMENTS)
    colors = dict(zip(names, ("#6a8caf", "#bbbbbb", "#d9822b", "#e8b04a"), strict=True))
    fig, (speed, loss) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=(2, 1))
    width = 0.8 / len(names)
    for m, name in enumerate(names):
        xs = [i + (m - (len(names) - 1) / 2) * width for i in range(len(labels))]
        values = [figures[b].get(name, {}).get("samples_per_s", 0.0) for b in labels]
        bars = speed.bar(xs, values, width, label=name, color=colors[name])
        speed.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    speed.set_xticks(range(len(labels)))
    speed.set_xticklabels(labels)
    speed.set_ylabel("training samples per second")
    speed.set_title("tiny transformer, 2 stages, per link bandwidth")
    speed.legend(frameon=False, fontsize=8)
    base = figures.get("unshaped") or figures[labels[0]]
    shown = [n for n in names if n in base]
    bars = loss.bar(shown, [base[n]["loss"] for n in shown], color=[colors[n] for n in shown])
    loss.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    loss.set_ylabel("loss after training")
    loss.tick_params(axis="x", labelsize=7)
    for ax in (speed, loss):
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run() -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    scheduler = scheduler_figures()
    plot_scheduler(scheduler, RESULTS / "swarm_scheduler.png")
    identical = exact_dp_identical()
    pipeline = pipeline_figures()
    if pipeline["bandwidths"]:
        plot_pipeline(pipeline["bandwidths"], RESULTS / "swarm_pipeline.png")
    return {
        "model": MODEL,
        "seed": SEED,
        "scheduler": scheduler,
        "exact_dp_identical": identical,
        "pipeline": pipeline["bandwidths"],
        "pipeline_run": {k: v for k, v in pipeline.items() if k != "bandwidths"},
    }


if __name__ == "__main__":
    started = time.perf_counter()
    print(run())
    print(f"{time.perf_counter() - started:.1f} s")
