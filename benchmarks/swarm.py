"""Swarm solvers: the scheduler on the paper's five scenarios.

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
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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


def plot_scheduler(figures: dict[str, Any], path: Path) -> None:
    """Bars: predicted communication per iteration, per scenario and scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(figures)
    methods = (("random", "random", "#bbbbbb"), ("baseline", "DT-FM search", "#6a8caf"))
    methods += (("ours", "ours", "#d9822b"),)
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


def run() -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    scheduler = scheduler_figures()
    plot_scheduler(scheduler, RESULTS / "swarm_scheduler.png")
    identical = exact_dp_identical()
    return {
        "model": MODEL,
        "seed": SEED,
        "scheduler": scheduler,
        "exact_dp_identical": identical,
    }


if __name__ == "__main__":
    started = time.perf_counter()
    print(run())
    print(f"{time.perf_counter() - started:.1f} s")
