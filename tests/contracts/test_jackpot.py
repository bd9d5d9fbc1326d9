"""Jackpot: funding, the one-time arbitration entry point, awards and their withdrawal."""

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


def test_nobody_awards_before_an_arbitration_contract_is_named(
    funded: Any, parties: Parties
) -> None:
    assert int(funded.arbitration(), 16) == 0
    for caller in (parties.deployer, parties.stranger):
        with reverts("NotArbitration", caller.address):
            funded.award(parties.solver, 1, REASON, {"from": caller})


def test_only_the_governor_names_the_arbitration_contract_once(
    jackpot: Any, parties: Parties
) -> None:
    assert jackpot.governor() == parties.deployer
    with reverts("NotGovernor", parties.stranger.address):
        jackpot.setArbitration(parties.stranger, {"from": parties.stranger})
    with reverts("ZeroAddress"):
        jackpot.setArbitration("0x" + "00" * 20, {"from": parties.deployer})
    tx = jackpot.setArbitration(parties.verifier, {"from": parties.deployer})
    assert tx.events["ArbitrationSet"]["arbitration"] == parties.verifier
    with reverts("ArbitrationAlreadySet", parties.verifier.address):
        jackpot.setArbitration(parties.stranger, {"from": parties.deployer})


def test_awards_are_pulled_by_their_recipient(funded: Any, parties: Parties) -> None:
    # An account stands in for the arbitration contract, which does not exist yet.
    arbitration = parties.verifier
    funded.setArbitration(arbitration, {"from": parties.deployer})
    with reverts("NotArbitration", parties.deployer.address):
        funded.award(parties.solver, 1, REASON, {"from": parties.deployer})
    tx = funded.award(parties.solver, 4 * 10**17, REASON, {"from": arbitration})
    awarded = tx.events["Awarded"]
    assert (awarded["recipient"], awarded["amount"], awarded["reason"]) == (
        parties.solver,
        4 * 10**17,
        REASON,
    )
    funded.award(parties.solver, 10**17, REASON, {"from": arbitration})
    assert funded.owed(parties.solver) == 5 * 10**17
    assert funded.owedTotal() == 5 * 10**17
    assert funded.reserve() == 5 * 10**17
    with reverts("InsufficientReserve", 5 * 10**17 + 1, 5 * 10**17):
        funded.award(parties.profiler, 5 * 10**17 + 1, REASON, {"from": arbitration})
    with reverts("ZeroAmount"):
        funded.award(parties.profiler, 0, REASON, {"from": arbitration})
    with reverts("ZeroAddress"):
        funded.award("0x" + "00" * 20, 1, REASON, {"from": arbitration})

    before = balance(parties.solver)
    tx = funded.withdraw({"from": parties.solver})
    assert (tx.events["Withdrawn"]["recipient"], tx.events["Withdrawn"]["amount"]) == (
        parties.solver,
        5 * 10**17,
    )
    assert balance(parties.solver) == before + 5 * 10**17
    assert funded.owedTotal() == 0
    assert funded.balance() == funded.reserve() == 5 * 10**17
    with reverts("NothingToWithdraw", parties.solver.address):
        funded.withdraw({"from": parties.solver})


def test_a_governor_is_required(project: Any, parties: Parties) -> None:
    with reverts("ZeroAddress"):
        project.Jackpot.deploy("0x" + "00" * 20, {"from": parties.deployer})
