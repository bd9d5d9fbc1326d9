"""Jackpot: funding, awards only by the arbitration contract fixed at deployment (at most a third
of the reserve each), their withdrawal, and no key that could drain it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contracts.driver import Parties, balance, reverts

REASON = "0x" + "ab" * 32


@pytest.fixture
def funded(jackpot: Any, parties: Parties) -> Any:
    jackpot.fund({"from": parties.stranger, "value": 10**18})
    return jackpot


def test_funding_adds_to_the_reserve(jackpot: Any, parties: Parties) -> None:
    tx = jackpot.fund({"from": parties.stranger, "value": 5})
    assert (tx.events["Funded"]["from"], tx.events["Funded"]["amount"]) == (parties.stranger, 5)
    assert jackpot.reserve() == 5
    with reverts("ZeroAmount"):
        jackpot.fund({"from": parties.stranger})


def test_plain_eth_is_refused(jackpot: Any, parties: Parties) -> None:
    from brownie.exceptions import VirtualMachineError

    with pytest.raises(VirtualMachineError):
        parties.stranger.transfer(jackpot, 1)


def test_the_deployed_jackpot_pays_only_through_the_pool(
    funded: Any, pool: Any, parties: Parties
) -> None:
    # The deployment names the pool (which awards caught forced errors) and nobody else.
    assert funded.arbitration() == pool.address
    for caller in (parties.deployer, parties.stranger, parties.verifier):
        with reverts("NotArbitration", caller.address):
            funded.award(parties.solver, 1, REASON, {"from": caller})


def test_no_key_can_name_another_arbitration_contract(funded: Any) -> None:
    # Nothing in the ABI changes who may award: no owner, no governor, no setter.
    writes = sorted(
        entry["name"]
        for entry in funded.abi
        if entry["type"] == "function" and entry["stateMutability"] not in ("view", "pure")
    )
    assert writes == ["award", "fund", "withdraw"]


@pytest.fixture
def arbitrated(project: Any, parties: Parties) -> Any:
    """A jackpot whose arbitration contract is an account the test controls."""
    jackpot = project.Jackpot.deploy(parties.verifier, {"from": parties.deployer})
    jackpot.fund({"from": parties.stranger, "value": 9 * 10**17})
    return jackpot


def test_the_arbitration_contract_is_fixed_at_deployment(arbitrated: Any, parties: Parties) -> None:
    assert arbitrated.arbitration() == parties.verifier
    created = arbitrated.tx.events["ArbitrationFixed"]
    assert created["arbitration"] == parties.verifier


def test_awards_are_capped_at_a_third_of_the_reserve(arbitrated: Any, parties: Parties) -> None:
    arbitration = parties.verifier
    assert arbitrated.awardCap() == 3 * 10**17
    with reverts("AwardAboveCap", 3 * 10**17 + 1, 3 * 10**17):
        arbitrated.award(parties.solver, 3 * 10**17 + 1, REASON, {"from": arbitration})
    arbitrated.award(parties.solver, 3 * 10**17, REASON, {"from": arbitration})
    # Each award shrinks the reserve, and with it the next cap: draining takes ever smaller steps.
    assert arbitrated.reserve() == 6 * 10**17
    assert arbitrated.awardCap() == 2 * 10**17
    total = 3 * 10**17
    for _ in range(20):
        cap = int(arbitrated.awardCap())
        arbitrated.award(parties.profiler, cap, REASON, {"from": arbitration})
        total += cap
    assert arbitrated.reserve() > 0
    assert arbitrated.owedTotal() == total


def test_awards_are_pulled_by_their_recipient(arbitrated: Any, parties: Parties) -> None:
    arbitration = parties.verifier
    with reverts("NotArbitration", parties.deployer.address):
        arbitrated.award(parties.solver, 1, REASON, {"from": parties.deployer})
    tx = arbitrated.award(parties.solver, 2 * 10**17, REASON, {"from": arbitration})
    awarded = tx.events["Awarded"]
    assert (awarded["recipient"], awarded["amount"], awarded["reason"]) == (
        parties.solver,
        2 * 10**17,
        REASON,
    )
    arbitrated.award(parties.solver, 10**17, REASON, {"from": arbitration})
    assert arbitrated.owed(parties.solver) == 3 * 10**17
    assert arbitrated.owedTotal() == 3 * 10**17
    assert arbitrated.reserve() == 6 * 10**17
    with reverts("ZeroAmount"):
        arbitrated.award(parties.profiler, 0, REASON, {"from": arbitration})
    with reverts("ZeroAddress"):
        arbitrated.award("0x" + "00" * 20, 1, REASON, {"from": arbitration})

    before = balance(parties.solver)
    tx = arbitrated.withdraw({"from": parties.solver})
    assert (tx.events["Withdrawn"]["recipient"], tx.events["Withdrawn"]["amount"]) == (
        parties.solver,
        3 * 10**17,
    )
    assert balance(parties.solver) == before + 3 * 10**17
    assert arbitrated.owedTotal() == 0
    assert arbitrated.balance() == arbitrated.reserve() == 6 * 10**17
    with reverts("NothingToWithdraw", parties.solver.address):
        arbitrated.withdraw({"from": parties.solver})
