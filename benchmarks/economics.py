"""Economics: the expected value per task of each strategy, from the pool's parameters and
measured detection.

Every figure is in units of the task's bounty ``B`` (the submitter pays ``B`` plus the
protocol fee). The money side comes from the deployment parameters
(``scripts.deploy.DEFAULT_PARAMETERS``, the values the pool is deployed with) through the
settlement table the contracts implement (``scripts.protocol.payouts``, checked against the
chain in tests/contracts). The detection side is measured:

- the verifier's sample is drawn by ``agents.learning.selection.sample_segments`` (the
  function the contracts mirror) for ``trials`` random randomness values, against a solver
  that fakes ``F = ⌈f · S⌉`` middle segments (the first and the last are always replayed, so
  a solver that fakes them is always caught); the exact probability is reported beside it;
- a verification's cost, as a share of the training it checks, is the traced replay's
  (``verify_traced_over_train`` of benchmarks/results/pol.json, measured on the digits
  example; a fixed conservative value when that file is missing);
- whistleblowers check proofs themselves (``agents.roles.whistleblower``): on a share
  ``proof_check_rate`` of the tasks (the agent's default ``whistleblower.proof_share``) one
  replays ``proof_segments`` segments (its default ``whistleblower.proof_segments``) drawn
  uniformly among those the sample does not contain, and challenges a fake it finds
  (``challengeProof``); these draws are made in the same trials as the sample's;
- screening (``agents.learning.screening``) is assumed to miss every fake: a fake that moves
  like honest training is not flagged, and a fake that does not is caught by it always, so
  ignoring screening only lowers the detection the figures rely on.

The model, per task:

- **solver** ``honest``: the passed payout less the bounty-share it spends training
  (``training_share``). ``fake_f``: it saves ``f`` of that cost and is caught with
  probability ``D(f)`` by an honest verifier's sample or a whistleblower's check of the
  proof outside it, losing its stake and its pay.
- **verifier** ``honest``: its fee less the traced replay of the sample, plus what forced
  errors bring it: every report that may be forced pays the forced-error tax ``T`` at
  settlement; with probability ``p`` it is forced, and a forced error nobody caught (no
  checking whistleblower, ``1 − q``) earns the verifier the jackpot's award ``J`` (caught, the
  award goes to its catchers; the verifier is not slashed either way): ``p · (1 − q) · J − T``,
  which is ``−p · q · J`` when ``T = p · J``. ``lazy_pass``: no replay; its trace roots are
  then not a replay's,
  which a whistleblower that checks the report shows in a game: it loses its stake and fee
  with the checking rate ``q``. ``always_fail``: a Fail on an honest proof is challenged by
  the solver, who wins the game: the verifier loses its stake (and pays the game).
- **whistleblower** ``checking``: it replays the sample (to check the report's trace roots)
  and ``proof_segments`` segments of its own choice (to check the proof where the sample did
  not look).
  Its income is the forced errors it catches: with probability ``p`` a checked report is
  forced, and the jackpot awards its catchers ``J = min(V, a third of the reserve)`` (``V``
  in steady state: the taxes keep the reserve). Whistleblowers check a documented share
  ``q`` (``checking_rate``) of reports; ``checking`` is the expected income of one checked
  report less its cost, and must not be negative.
- **verifier_forced_self_challenge**: a forced verifier that challenges its own forced root
  through a second address moves the award from itself (a forced error nobody caught pays
  its verifier) to that address, and pays the game: ``p · (J − J − game)`` per task, never
  positive. ``forced_self_challenge_beside_a_whistleblower``: the same when a whistleblower
  also caught it (rate ``q``): the second address takes half of the award the whistleblower
  would have had alone, ``p · (q · J / 2 − game)``; no rule that pays catchers from the
  jackpot without slashing can stop that (documented, not in ``honest_is_best``).
- **verifier_forced_error_income**: the most any verifier can expect from the mechanism,
  erring on every forced report and never caught (or caught only by itself): ``p · J − T``
  per task; it must not be positive, so that nobody farms forced errors.
- **sybil_self_verify**: a solver verifying itself through a second address steers the
  sample away from its ``F`` fakes (it knows both shares of the randomness) and reports Pass;
  the best of faking ``f`` of the work with an honest replay of the sample (caught when a
  whistleblower that checks the proof draws a fake among its own segments) or with a lazy
  report (caught whenever one re-checks the report, or checks the proof and hits a fake).
  Compared with the honest solver and verifier pair.

- **profiler** (tolerant tasks) ``honest``: the profile fee, paid when the task completes
  with its τ, less the profiling (``profile_over_train`` of the training: pol.json's
  ``profile_cost_ratio``). ``junk``: a τ of +0, no artifact or another task's profile, which
  the submitter's review rejects (``rejectProfile``): the stake comes back and nothing more
  (``scripts.protocol.profile_rejection``), so it gains nothing, once per rejection, however
  many sybils post it.

``honest_is_best`` holds when honest is strictly best for the solver, the verifier, the
profiler and the sybil pair, and checking covers its cost for the whistleblower.
"""

from __future__ import annotations

import json
import math
import os
import random
import secrets
from dataclasses import asdict, dataclass
from math import comb
from pathlib import Path
from typing import Any

from agents.learning.selection import sample_detection, sample_segments
from agents.node.config import WhistleblowerPolicy
from scripts.deploy import DEFAULT_PARAMETERS, ProtocolParameters
from scripts.protocol import Amounts, Outcome, payouts, profile_rejection

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.01, 0.1, 0.5, 1.0)
UNIT = 10**18  # the bounty the amounts are computed at (1 ether): figures are shares of it


@dataclass(frozen=True)
class Assumptions:
    """What the parameters do not fix: the market's prices."""

    segments: int = 200  # S of the digits example
    sampled: int = 5  # its s
    training_share: float = 0.5  # the honest solver's training cost, as a share of the bounty
    verify_over_train: float = 0.25  # a traced replay of the sample over training (pol.json)
    game_gas: int = 3_000_000  # both sides of one pinpoint game, gas
    gas_price_wei: int = 10**9
    checking_rate: float = 0.25  # the share of reports whistleblowers check (documented rate)
    # The share of tasks whose proof a whistleblower checks outside the sample, and the
    # segments it replays there: the whistleblower's defaults (agents/node/config.py).
    proof_check_rate: float = WhistleblowerPolicy().proof_share
    proof_segments: int = WhistleblowerPolicy().proof_segments
    profile_over_train: float = 0.1  # a profile's cost over the training (pol.json)


def detection(assumptions: Assumptions, faked: int, trials: int) -> tuple[float, float, float]:
    """P(an honest verifier's sample holds one of ``faked`` middle segments): measured over
    ``trials`` random randomness values with the sampling function, and exact; and P(the
    sample or a whistleblower's check of the proof finds one), measured in the same trials
    (a check happens with ``proof_check_rate`` and replays ``proof_segments`` segments drawn
    uniformly among those outside the sample)."""
    S, s = assumptions.segments, assumptions.sampled
    fakes = set(range(1, 1 + faked))  # every set of middle segments is drawn alike
    rng = random.Random(secrets.randbits(64))
    hits, checked = 0, 0.0
    for _ in range(trials):
        sample = sample_segments(secrets.token_bytes(32), S, s)
        if fakes.intersection(sample):
            hits += 1
            continue
        outside = [i for i in range(S) if i not in set(sample)]
        own = rng.sample(outside, min(assumptions.proof_segments, len(outside)))
        if fakes.intersection(own):
            checked += assumptions.proof_check_rate
    return hits / trials, sample_detection(S, sorted(fakes), s), (hits + checked) / trials


def own_draw_detection(middle: int, faked: int, draws: int) -> float:
    """P(``draws`` segments drawn uniformly from ``middle`` hit one of ``faked``)."""
    if faked <= 0:
        return 0.0
    draws = min(draws, middle)
    return 1.0 - comb(middle - faked, draws) / comb(middle, draws)


def model(parameters: ProtocolParameters, assumptions: Assumptions, trials: int) -> dict[str, Any]:
    """The figures (see the module docstring)."""
    amounts = Amounts.of(UNIT, parameters)

    def share(wei: int) -> float:
        return wei / UNIT

    # The verifier of a report that may be forced (the first claim) pays the forced-error tax.
    passed = payouts(Outcome.PASSED, amounts, False, parameters, taxed=True)
    failed = payouts(Outcome.FAILED, amounts, False, parameters, taxed=True)
    stake_s, stake_v = share(amounts.solver_stake), share(amounts.verifier_stake)
    fee_p = share(amounts.protocol_fee)
    train = assumptions.training_share
    # Payouts include the stake each party locked; a party's gain is payout less stake.
    solver_paid = share(passed.solver) - stake_s
    verifier_paid = share(passed.verifier) - stake_v
    assert share(failed.verifier) == share(passed.verifier)  # same fee for Pass and Fail
    game = assumptions.game_gas * assumptions.gas_price_wei / UNIT
    S, s = assumptions.segments, assumptions.sampled
    sample = min(S, s + 2)
    verify = assumptions.verify_over_train * train  # the traced replay of the sample
    own = assumptions.proof_segments
    check = verify * (sample + own) / sample  # the sample, and its own segments of the proof
    p = parameters.forcedErrorPpm / 1_000_000
    # The award for a forced error that was erred: the verifier's stake, at most a third of the
    # jackpot's reserve (contracts/TaskPool.sol), to its catchers or, caught by nobody, to its
    # verifier; in steady state the stake (the taxes fund the reserve).
    award = stake_v
    tax = share(amounts.forced_error_tax)
    q = assumptions.checking_rate
    # What forced errors bring a verifier beyond the tax it pays (``verifier_paid`` has it
    # taken off already): the award of those nobody caught.
    forced_income = p * (1 - q) * award

    solver: dict[str, float] = {"honest": solver_paid - train}
    measured: dict[str, dict[str, float]] = {}
    for f in FRACTIONS:
        faked = min(S - 2, max(1, math.ceil(f * S)))
        if f >= 1.0:
            rate, exact, caught = 1.0, 1.0, 1.0  # every segment, the first and the last included
        else:
            rate, exact, caught = detection(assumptions, faked, trials)
        measured[f"fake_{f:g}"] = {
            "faked": faked,
            "measured": rate,
            "exact": exact,
            "with_proof_checks": caught,
        }
        solver[f"fake_{f:g}"] = (1 - caught) * solver_paid - caught * stake_s - (1 - f) * train

    verifier = {
        "honest": verifier_paid - verify + forced_income,
        "lazy_pass": verifier_paid - q * (stake_v + verifier_paid + game) + forced_income,
        "always_fail": -stake_v - game,
    }
    income = p * award  # a checked report's expected award
    whistleblower = {"checking": income - check}

    # The sybil pair: solver and verifier are one party.
    honest_pair = solver["honest"] + verifier["honest"]
    middle = S - 2
    outside = S - sample  # the segments a whistleblower draws its own from
    q_proof = assumptions.proof_check_rate
    sybil = -math.inf
    for f in FRACTIONS:
        faked = min(middle, max(1, math.ceil(f * S)))
        saved = min(1.0, faked / middle) * train
        # The pair steers the sample away from its fakes (while there are segments enough).
        hit = own_draw_detection(outside, min(faked, outside), own)
        caught_replaying = q_proof * hit
        caught_lazy = 1 - (1 - q) * (1 - q_proof * hit)
        loss = stake_s + solver_paid + stake_v + verifier_paid + game
        # Its verifier address is forced like any other (it cannot choose), and caught alike.
        replaying = (
            solver_paid + verifier_paid - (train - saved) - verify - caught_replaying * loss
        ) + forced_income
        lazy = solver_paid + verifier_paid - (train - saved) - caught_lazy * loss + forced_income
        sybil = max(sybil, replaying, lazy)

    rejected = profile_rejection(amounts)
    profiler = {
        "honest": share(amounts.profile_fee) - assumptions.profile_over_train * train,
        "junk": share(rejected.profiler) - share(amounts.profiler_stake),
    }

    best = (
        all(solver["honest"] > v for k, v in solver.items() if k != "honest")
        and profiler["honest"] > profiler["junk"]
        and all(verifier["honest"] > v for k, v in verifier.items() if k != "honest")
        and whistleblower["checking"] >= 0
        and honest_pair > sybil
        and p * (award - award - game) <= 0
        and p * award - tax <= 1e-12
        and tax <= share(amounts.verification_fee)
    )
    return {
        "unit": "bounty",
        "parameters": parameters.as_dict(),
        "assumptions": asdict(assumptions),
        "check_rate": q,
        "forced_error_award": award,
        "forced_error_tax": tax,
        # What a forced verifier gets back when its error was caught: stake and fee less the
        # tax; at least its stake (it is not slashed).
        "forced_verifier_caught_payout": share(passed.verifier),
        "verifier_stake": stake_v,
        "protocol_fee": fee_p,
        "whistleblower_income_per_check": income,
        "whistleblower_cost_per_check": check,
        "verification_cost": verify,
        "detection": measured,
        "solver": solver,
        "verifier": verifier,
        "whistleblower": whistleblower,
        "profiler": profiler,
        "sybil_self_verify": sybil - honest_pair,
        # A verifier that challenges its own forced errors through a second address: the award
        # moves from the verifier (a forced error nobody caught pays it) to that address.
        "verifier_forced_self_challenge": p * (award - award - game),
        # ... when a whistleblower caught it too: half of that whistleblower's award.
        "forced_self_challenge_beside_a_whistleblower": p * (q * award / 2 - game),
        # The most forced errors can bring any verifier (every one erred, none caught by others).
        "verifier_forced_error_income": p * award - tax,
        "honest_pair": honest_pair,
        "honest_is_best": best,
    }


def run() -> dict[str, Any]:
    trials = int(os.environ.get("VERITRAIN_ECONOMICS_TRIALS", "20000"))
    assumptions = Assumptions()
    pol = RESULTS / "pol.json"
    if pol.exists():
        figures = json.loads(pol.read_text())
        assumptions = Assumptions(
            segments=int(figures.get("segments", assumptions.segments)),
            sampled=int(figures.get("sampled", assumptions.sampled)),
            verify_over_train=float(
                figures.get("verify_traced_over_train", assumptions.verify_over_train)
            ),
            profile_over_train=float(
                figures.get("examples", {})
                .get("digits-mlp", {})
                .get("profile_cost_ratio", assumptions.profile_over_train)
            ),
        )
    return model(DEFAULT_PARAMETERS, assumptions, trials)
