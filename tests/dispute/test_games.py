"""Randomized pinpoint games on real segments of the example models (digits MLP, small CNN,
tiny transformer; 6 steps in segments of 2), played on anvil.

Each game draws a model, a segment and a scenario: a liar (defender or challenger) whose
replay lies at a random step, op, element or partial result, or in a record's attribute or
input, its batch or its state; two liars who lie differently at the same element; a liar
who stops answering after a random number of moves; an honest party that does. The honest
party wins every game it plays to the end, both lose when both lie, the silent party loses
by clock, and no party makes more moves than ``moves_bound`` predicts. The one step is the
arbiter's ``OneStep``: the chain computes every disputed element from the proved leaves.

``make test`` plays ``FAST_GAMES`` games; ``make test-all`` plays ``SLOW_GAMES``.
"""

from __future__ import annotations

import functools
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.dispute.decisions import moves_bound
from agents.dispute.game import Party, Phase, Reason, Ruling
from agents.dispute.replay import Fault, ReplayProvider, fault_choices
from scripts.arena import BITS, Arena, Player, open_game, trace_cache
from tests.dispute import segments

FAST_GAMES = int(__import__("os").environ.get("GAMES", "100"))
SLOW_GAMES = 1000
MODELS = ("mlp", "mlp", "cnn", "cnn", "transformer")  # the transformer's replays cost the most
LIES = ("value", "value", "term", "term", "attribute", "input", "batch", "state")


@dataclass(frozen=True)
class Scenario:
    model: str
    segment: int
    kind: str  # liar | both | silent-liar | silent-honest
    liar: Party
    faults: tuple[Fault, ...]  # the liar's (both: defender's, then challenger's)
    silent_after: int | None = None


@functools.cache
def _cache_dir() -> Path:
    return trace_cache("dispute-traces-")


@functools.cache
def honest(model: str, segment: int) -> ReplayProvider:
    return segments.provider(model, segment, _cache_dir())


def draw(rng: random.Random) -> Scenario:
    model = rng.choice(MODELS)
    segment = rng.randrange(segments.STEPS // segments.INTERVAL)
    reference = honest(model, segment)
    liar = rng.choice([Party.DEFENDER, Party.CHALLENGER])
    roll = rng.random()
    if roll < 0.12:
        fault = fault_choices(reference, "value", rng)
        assert fault is not None
        other = Fault(
            "value", fault.step, fault.op, element=fault.element, mask=fault.mask << 1 or 1
        )
        return Scenario(model, segment, "both", liar, (fault, other))
    kind = rng.choice(LIES)
    fault = fault_choices(reference, kind, rng)
    if fault is None:  # no op of that kind in the segment: lie about a value instead
        fault = fault_choices(reference, "value", rng)
    assert fault is not None
    if roll < 0.22:
        return Scenario(model, segment, "silent-liar", liar, (fault,), rng.randrange(0, 8))
    if roll < 0.30:
        return Scenario(model, segment, "silent-honest", liar, (fault,), rng.randrange(0, 8))
    return Scenario(model, segment, "liar", liar, (fault,))


def play(arena: Arena, deployed: Any, scenario: Scenario) -> tuple[Any, int]:
    # A lying trace serves one game: its replay cache (hundreds of megabytes) goes with it,
    # so a thousand games do not fill the disk.
    with tempfile.TemporaryDirectory(dir=_cache_dir()) as lies:
        return _play(arena, deployed, scenario, Path(lies))


def _play(arena: Arena, deployed: Any, scenario: Scenario, lies: Path) -> tuple[Any, int]:
    model, segment = scenario.model, scenario.segment
    reference = honest(model, segment)
    lying = [segments.provider(model, segment, lies, f) for f in scenario.faults]
    if scenario.kind == "both":
        defender_trace, challenger_trace = lying
    elif scenario.liar == Party.DEFENDER:
        defender_trace, challenger_trace = lying[0], reference
    else:
        defender_trace, challenger_trace = reference, lying[0]
    roots = {reference.trace_root, *(trace.trace_root for trace in lying)}
    assert len(roots) == 1 + len(lying), f"a drawn lie left its trace unchanged: {scenario}"
    accounts = deployed.accounts
    game_id, _ = open_game(
        deployed.arbitrated,
        reference.program,
        segments.checkpoint_roots(model),
        segment,
        defender_trace.trace_root,
        challenger_trace.trace_root,
        accounts[1],
        accounts[2],
    )
    silent_party = {
        "silent-liar": scenario.liar,
        "silent-honest": scenario.liar.other,
    }.get(scenario.kind)
    players = {}
    for party, trace, account in (
        (Party.DEFENDER, defender_trace, accounts[1]),
        (Party.CHALLENGER, challenger_trace, accounts[2]),
    ):
        silent = scenario.silent_after if party == silent_party else None
        players[party] = Player(party, account, trace, silent_after=silent)
    outcome = arena.play(game_id, players[Party.DEFENDER], players[Party.CHALLENGER], reference)
    bound = moves_bound(reference, BITS, int(deployed.one_step.maxTerms()))
    return outcome, bound


def check(scenario: Scenario, outcome: Any, bound: int) -> None:
    state = outcome.state
    assert state.phase == Phase.RESOLVED, outcome.phases
    honest_wins = (
        Ruling.DEFENDER_WINS if scenario.liar == Party.CHALLENGER else Ruling.CHALLENGER_WINS
    )
    if scenario.kind == "both":
        assert (state.ruling, state.reason) == (Ruling.BOTH_LOSE, Reason.ONE_STEP), outcome.phases
    elif scenario.kind == "silent-honest":
        honest_party = scenario.liar.other
        if outcome.moves[honest_party] < (scenario.silent_after or 0) or (
            state.reason != Reason.CLOCK
        ):
            # The game ended before the honest party fell silent: it won on the merits.
            assert state.ruling == honest_wins, (state.reason, outcome.phases)
            assert outcome.moves[honest_party] <= (scenario.silent_after or 0)
        else:
            assert state.ruling != honest_wins and state.reason == Reason.CLOCK, outcome.phases
    else:
        assert state.ruling == honest_wins, (state.reason, outcome.phases)
        if scenario.kind == "liar" and scenario.faults[0].kind == "garbage":
            assert state.reason == Reason.CLOCK
    assert max(outcome.moves.values()) <= bound, (outcome.moves, bound)


@contextmanager
def rewound() -> Iterator[None]:
    """Undo a game's blocks once it is judged: anvil keeps every block in memory, and a
    thousand games on one chain grew it past 20 GB. Each game starts from the same state."""
    from brownie import chain, web3
    from brownie.network import state
    from web3.types import RPCEndpoint

    height = web3.eth.block_number
    snapshot = web3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    try:
        yield
    finally:
        reverted = web3.provider.make_request(RPCEndpoint("evm_revert"), [snapshot])
        assert reverted.get("result") is True, reverted
        assert web3.eth.block_number == height
        chain._set_time_offset_from_block()
        state._notify_registry()


def _games(count: int, seed: int, arena: Arena, deployed: Any) -> list[tuple[Scenario, Any]]:
    rng = random.Random(seed)
    played = []
    for _ in range(count):
        scenario = draw(rng)
        with rewound():
            outcome, bound = play(arena, deployed, scenario)
            check(scenario, outcome, bound)
        played.append((scenario, outcome))
    return played


def test_randomized_games(arbitrated_arena: Arena, deployed: Any) -> None:
    played = _games(FAST_GAMES, 20260101, arbitrated_arena, deployed)
    kinds = {s.kind for s, _ in played}
    lies = {s.faults[0].kind for s, _ in played}
    assert kinds == {"liar", "both", "silent-liar", "silent-honest"}
    # Some honest parties did fall silent, and lost by clock.
    assert any(s.kind == "silent-honest" and o.state.reason == Reason.CLOCK for s, o in played)
    assert {"value", "term", "attribute", "input", "batch", "state"} <= lies
    assert {s.model for s, _ in played} == {"mlp", "cnn", "transformer"}


@pytest.mark.slow
def test_many_randomized_games(arbitrated_arena: Arena, deployed: Any) -> None:
    _games(SLOW_GAMES, 20260102, arbitrated_arena, deployed)
