"""Pinpoint games on a full-length segment of each example model, decided by the one step.

For each example spec (examples/digits-mlp.yaml, digits-cnn.yaml, char-transformer.yaml) the
first segment (``checkpoint_interval`` steps) is trained with the exact backend; the honest
replay of it and liars' replays (a liar who is the defender or the challenger, lying at a
random step about an output element, a partial result of a reduction, a record's attribute
or input, its batch or its state) play games on anvil against the ``PinpointGame``, whose
one step is the arbiter's ``OneStep``. Per model:

- ``games``, ``honest_wins``: games played, and those the honest party won (the goal: all);
- ``moves_max``: the most moves one party made in a game; ``moves_predicted``: the bound
  ``agents.dispute.decisions.moves_bound`` gives for the segment (``moves_max`` must not
  exceed it);
- ``move_gas_max``: the costliest move (every transaction of a party but the one step:
  dissections, reveals, term bisections, proofs, timeouts), goal ≤ 100,000;
  ``one_step_gas_max``: the costliest one step;
- ``game_gas_max``: the most gas one party spent in one game, one step included, goal
  ≤ 5,000,000;
- ``game_seconds_max``: the longest game, from creation to ruling, both players deciding
  from their replays (each replay computed before the game starts) and anvil mining;
- ``move_gas_by_function``: the costliest transaction of each function a party sent (the
  gas table of docs/dispute.md);
- ``create_gas_max``: the creation (checks the program header and both checkpoints; paid by
  whoever opens the game, counted in the challenger's ``game_gas_max``).

Gas is deterministic: the figures are compared with the issue's goals (``goal_ratios``), not
with a baseline of the same run. ``DISPUTE_GAMES`` sets the games per model (default 12),
``DISPUTE_STEPS`` shortens the segment (a smoke run), ``DISPUTE_MODELS`` picks models.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path
from typing import Any

from agents.commitment import state_root
from agents.dispute.decisions import moves_bound
from agents.dispute.game import Party, Phase, Ruling
from agents.dispute.programs import program_of
from agents.dispute.replay import Fault, ReplayProvider, fault_choices
from agents.learning.backends import get_backend
from agents.learning.datasets import build
from agents.learning.spec import load_spec
from agents.learning.task import Task
from scripts.arena import BITS, Arena, Player, game_params, open_game, trace_cache
from scripts.deploy import deploy_arbiter
from scripts.network import attached, local_devnet

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "digits_mlp": "examples/digits-mlp.yaml",
    "digits_cnn": "examples/digits-cnn.yaml",
    "char_transformer": "examples/char-transformer.yaml",
}
LIES = ("value", "term", "attribute", "input", "batch", "state")
GOALS = {"move_gas": 100_000, "game_gas": 5_000_000}
SEED = 20261205


def _task(path: str) -> Task:
    spec = load_spec(ROOT / path)
    steps = os.environ.get("DISPUTE_STEPS")
    if steps:
        # A smoke run: segments of that many steps, four of them (the spec is not re-validated).
        spec = spec.model_copy(update={"checkpoint_interval": int(steps), "steps": 4 * int(steps)})
    assert spec.dataset.source is not None
    return Task.bind(spec, build(spec.dataset.source))


def _segment(task: Task) -> tuple[list[bytes], Any, Any]:
    """The first segment's two end states, and checkpoint roots for the whole task: the two
    real ones first, then stand-ins (a game reads only its segment's two checkpoints, proved
    against the root; training the whole task would not change a figure)."""
    start = task.initial_state()
    session = get_backend("exact").start(task, start)
    session.run(task.segment_batches(0))
    end = session.state()
    stand_ins = [
        hashlib.sha256(b"checkpoint %d" % i).digest() for i in range(2, task.spec.segment_count + 1)
    ]
    return [state_root(start), state_root(end), *stand_ins], start, end


def _fault(reference: ReplayProvider, rng: random.Random) -> Fault:
    kind = rng.choice(LIES)
    fault = fault_choices(reference, kind, rng) or fault_choices(reference, "value", rng)
    assert fault is not None
    return fault


def _model(name: str, path: str, games: int, deployed: Any, accounts: Any) -> dict[str, Any]:
    rng = random.Random(SEED)
    task = _task(path)
    program = program_of(task)
    cache = trace_cache(f"dispute-bench-{name}-")
    roots, start, end = _segment(task)

    def provider(fault: Fault | None) -> ReplayProvider:
        return ReplayProvider(task, program, 0, start, end, fault=fault, cache=cache)

    reference = provider(None)
    reference.trace_root  # noqa: B018  (replays the segment before any game is timed)
    game, one_step = deployed
    predicted = moves_bound(reference, BITS, int(one_step.maxTerms()))
    arena = Arena(game, None, accounts[9], rng)
    figures: dict[str, Any] = {
        "games": 0,
        "honest_wins": 0,
        "moves_max": 0,
        "moves_predicted": predicted,
        "move_gas_max": 0,
        "one_step_gas_max": 0,
        "game_gas_max": 0,
        "game_seconds_max": 0.0,
        "create_gas_max": 0,
        "segment_steps": reference.step_count,
        "move_gas_by_function": {},
    }
    while figures["games"] < games:
        liar = rng.choice([Party.DEFENDER, Party.CHALLENGER])
        lying = provider(_fault(reference, rng))
        if lying.trace_root == reference.trace_root:
            # fault_choices draws only lies that change the trace (tests/dispute/test_lies.py).
            raise RuntimeError(f"the drawn lie {lying.fault} left the trace unchanged")
        traces = {liar: lying, liar.other: reference}
        players = {
            party: Player(party, accounts[1 + int(party)], traces[party])
            for party in (Party.DEFENDER, Party.CHALLENGER)
        }
        calls: dict[Party, list[tuple[str, int]]] = {p: [] for p in players}

        def record(player: Player, move: Any, tx: Any, calls: Any = calls) -> None:
            calls[player.party].append((move.function, int(tx.gas_used)))

        started = time.perf_counter()
        game_id, created = open_game(
            game,
            program,
            roots,
            0,
            traces[Party.DEFENDER].trace_root,
            traces[Party.CHALLENGER].trace_root,
            players[Party.DEFENDER].account,
            players[Party.CHALLENGER].account,
        )
        outcome = arena.play(
            game_id,
            players[Party.DEFENDER],
            players[Party.CHALLENGER],
            reference,
            on_move=record,
        )
        seconds = time.perf_counter() - started
        state = outcome.state
        assert state.phase == Phase.RESOLVED
        honest_wins = Ruling.DEFENDER_WINS if liar == Party.CHALLENGER else Ruling.CHALLENGER_WINS
        figures["games"] += 1
        figures["honest_wins"] += int(state.ruling == honest_wins)
        figures["moves_max"] = max(figures["moves_max"], *outcome.moves.values())
        figures["game_seconds_max"] = max(figures["game_seconds_max"], round(seconds, 2))
        figures["create_gas_max"] = max(figures["create_gas_max"], int(created.gas_used))
        for party, made in calls.items():
            spent = sum(gas for _, gas in made)
            if party == Party.CHALLENGER:
                spent += int(created.gas_used)  # the challenger opens the game
            figures["game_gas_max"] = max(figures["game_gas_max"], spent)
            for function, gas in made:
                key = "one_step_gas_max" if function == "oneStep" else "move_gas_max"
                figures[key] = max(figures[key], gas)
                by_function = figures["move_gas_by_function"]
                by_function[function] = max(by_function.get(function, 0), gas)
        figures["one_step_gas_max"] = max(figures["one_step_gas_max"], outcome.one_step_gas)
    figures["goal_ratios"] = {
        "move_gas": round(figures["move_gas_max"] / GOALS["move_gas"], 3),
        "game_gas": round(figures["game_gas_max"] / GOALS["game_gas"], 3),
    }
    return figures


def run() -> dict[str, Any]:
    games = int(os.environ.get("DISPUTE_GAMES", "12"))
    names = os.environ.get("DISPUTE_MODELS", ",".join(MODELS)).split(",")
    out: dict[str, Any] = {"dissection_bits": BITS, "goals": GOALS}
    with local_devnet(accounts=12, balance_eth=10**7) as node, attached(node) as project:
        from brownie import accounts

        jackpot = project.Jackpot.deploy(accounts[0], {"from": accounts[0]}, silent=True)
        one_step = deploy_arbiter(project, accounts[0], silent=True)["OneStep"]
        game = project.PinpointGame.deploy(
            game_params(one_step.address, jackpot.address), {"from": accounts[0]}, silent=True
        )
        for name in names:
            out[name] = _model(name, MODELS[name], games, (game, one_step), accounts)
    return out
