"""The economics model: detection measured against the formula, payoffs against the
settlement rules worked out by hand, and the parameter choices it argues for."""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmarks.economics import Assumptions, model, own_draw_detection
from scripts.deploy import DEFAULT_PARAMETERS

ASSUME = Assumptions(segments=200, sampled=5, verify_over_train=0.1718)


@pytest.mark.parametrize(
    ("middle", "faked", "draws", "expected"),
    [
        (10, 0, 3, 0.0),
        (10, 10, 1, 1.0),
        (10, 5, 1, 0.5),
        (4, 1, 2, 0.5),  # 1 - C(3, 2) / C(4, 2)
        (5, 1, 9, 1.0),  # more draws than segments: all of them
    ],
)
def test_own_draw_detection(middle: int, faked: int, draws: int, expected: float) -> None:
    assert own_draw_detection(middle, faked, draws) == pytest.approx(expected)


def test_measured_detection_agrees_with_the_formula() -> None:
    trials = 4000
    figures = model(DEFAULT_PARAMETERS, ASSUME, trials)
    for name, d in figures["detection"].items():
        spread = math.sqrt(max(d["exact"] * (1 - d["exact"]), 1e-4) / trials)
        assert abs(d["measured"] - d["exact"]) <= 5 * spread, name
    assert figures["detection"]["fake_1"]["measured"] == 1.0


def test_honest_payoffs_follow_the_parameters() -> None:
    figures = model(DEFAULT_PARAMETERS, ASSUME, 200)
    fee = DEFAULT_PARAMETERS.verificationFeeBps / 10_000
    # The solver gets the bounty less the verifier's fee, and spends the training.
    assert figures["solver"]["honest"] == pytest.approx(1 - fee - ASSUME.training_share)
    # The verifier gets its fee less the forced-error tax and spends a traced replay of the
    # sample; the forced errors nobody catches (rate p · (1 − q)) earn it the award, its stake.
    verify = ASSUME.verify_over_train * ASSUME.training_share
    forced = DEFAULT_PARAMETERS.forcedErrorPpm / 1_000_000
    stake_v = DEFAULT_PARAMETERS.verifierStakeBps / 10_000
    tax = DEFAULT_PARAMETERS.forcedErrorTaxBps / 10_000
    uncaught = forced * (1 - ASSUME.checking_rate) * stake_v
    assert figures["verifier"]["honest"] == pytest.approx(fee - tax - verify + uncaught)
    # With the tax at p · V this is the fee less the replay less p · q · V.
    assert tax == pytest.approx(forced * stake_v)
    assert figures["verifier"]["honest"] == pytest.approx(
        fee - verify - forced * ASSUME.checking_rate * stake_v
    )
    # Failing an honest proof loses the verifier stake once the solver wins its challenge.
    stake = DEFAULT_PARAMETERS.verifierStakeBps / 10_000
    assert figures["verifier"]["always_fail"] < -stake + 1e-9


def test_faking_more_is_caught_more() -> None:
    figures = model(DEFAULT_PARAMETERS, ASSUME, 2000)
    rates = [figures["detection"][f"fake_{f}"]["exact"] for f in ("0.01", "0.1", "0.5", "1")]
    assert rates == sorted(rates) and rates[-1] == 1.0


def test_whistleblowers_checks_make_laziness_and_sybils_lose() -> None:
    rare = model(DEFAULT_PARAMETERS, dataclasses.replace(ASSUME, checking_rate=0.01), 500)
    default = model(DEFAULT_PARAMETERS, ASSUME, 500)
    assert rare["check_rate"] < default["check_rate"]
    assert rare["verifier"]["lazy_pass"] > default["verifier"]["lazy_pass"]
    assert rare["sybil_self_verify"] > default["sybil_self_verify"]
    # When almost nobody checks, a lazy Pass beats honest verification; at the documented rate
    # it does not.
    assert rare["verifier"]["lazy_pass"] > rare["verifier"]["honest"]
    assert rare["honest_is_best"] is False
    assert default["honest_is_best"] is True
    # Whistleblowers check where it pays, and a verifier gains nothing by catching itself.
    assert default["whistleblower"]["checking"] > 0
    assert default["verifier_forced_self_challenge"] <= 0
    assert default["verifier_forced_error_income"] <= 1e-12


def test_the_forced_error_tax_funds_the_awards_and_leaves_the_stake_whole() -> None:
    figures = model(DEFAULT_PARAMETERS, ASSUME, 200)
    # A caught forced verifier is not slashed: stake and fee less the tax.
    assert figures["forced_verifier_caught_payout"] >= figures["verifier_stake"]
    # A tax below p · J lets a verifier farm forced errors (err on each, never caught).
    low = dataclasses.replace(DEFAULT_PARAMETERS, forcedErrorTaxBps=3_000)
    farmed = model(low, ASSUME, 200)
    assert farmed["verifier_forced_error_income"] > 0 and farmed["honest_is_best"] is False
    # Beside a whistleblower that caught it too, a second address takes half its award: the
    # caveat docs/economics.md states (p · (q · J / 2 − game)).
    p = DEFAULT_PARAMETERS.forcedErrorPpm / 1_000_000
    game = ASSUME.game_gas * ASSUME.gas_price_wei / 10**18
    expected = p * (ASSUME.checking_rate * figures["forced_error_award"] / 2 - game)
    assert figures["forced_self_challenge_beside_a_whistleblower"] == pytest.approx(expected)


def test_whistleblowers_checks_of_the_proof_add_to_the_samples_detection() -> None:
    """Measured in the same trials as the sample: a fake the sample misses is caught when a
    check happens (rate ``proof_check_rate``) and its own segments, drawn outside the sample,
    hit one: ``D + (1 − D) · rate · own(S − sample, F, n)``."""
    trials = 4000
    assume = dataclasses.replace(ASSUME, proof_check_rate=0.5, proof_segments=20)
    figures = model(DEFAULT_PARAMETERS, assume, trials)
    outside = assume.segments - (assume.sampled + 2)
    for name, d in figures["detection"].items():
        if name == "fake_1":
            continue
        own = own_draw_detection(outside, d["faked"], assume.proof_segments)
        expected = d["exact"] + (1 - d["exact"]) * assume.proof_check_rate * own
        spread = math.sqrt(max(expected * (1 - expected), 1e-4) / trials)
        assert abs(d["with_proof_checks"] - expected) <= 5 * spread, name
        assert d["with_proof_checks"] >= d["measured"]
    # Without checks of the proof, the solver's fakes and the sybil pair fare better.
    unchecked = model(DEFAULT_PARAMETERS, dataclasses.replace(assume, proof_check_rate=0.0), 500)
    assert unchecked["sybil_self_verify"] > figures["sybil_self_verify"]
    assert unchecked["solver"]["fake_0.1"] > figures["solver"]["fake_0.1"]
    for d in unchecked["detection"].values():
        assert d["with_proof_checks"] == d["measured"]


def test_a_rejected_junk_profile_earns_nothing_and_honest_profiling_pays() -> None:
    figures = model(DEFAULT_PARAMETERS, ASSUME, 200)
    profiler = figures["profiler"]
    # A rejected profile gets its stake back, nothing more.
    assert profiler["junk"] == 0
    # The profile fee, paid when the task completes, covers a profile at a tenth of training.
    fee = DEFAULT_PARAMETERS.profileFeeBps / 10_000
    assert profiler["honest"] == pytest.approx(
        fee - ASSUME.profile_over_train * ASSUME.training_share
    )
    assert profiler["honest"] > profiler["junk"]
    # A profile fee below the profile's cost makes doing nothing better than profiling.
    cheap = dataclasses.replace(DEFAULT_PARAMETERS, profileFeeBps=200)
    underpaid = model(cheap, ASSUME, 200)
    assert underpaid["profiler"]["honest"] < 0 and underpaid["honest_is_best"] is False
