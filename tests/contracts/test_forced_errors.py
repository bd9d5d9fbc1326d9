"""Forced errors (PROTOCOL.md §1.8): a verifier commits a secret at its claim; with probability p,
decided by that secret, the randomness drawn after the claim and the hash of the block that holds
the claim, it must report a wrong trace roots root while sealing its true one. After the
challenge window it reveals: a forced report is replaced by the true one and stays open to
challenge, an honest one settles and is paid at once; a forced verifier that did not err, or an
unforced one that disowns its report, forfeits. The verifier of a report that may be forced
pays the forced-error tax out of its payout; a forced error nobody caught earns its verifier
the jackpot's award (tests/contracts/test_challenges.py has the caught ones)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak

from scripts.deploy import ProtocolParameters
from scripts.protocol import (
    Flag,
    Outcome,
    Status,
    forced_below,
    forced_error,
    forced_error_award,
    payouts,
)
from tests.contracts.driver import (
    SECRET,
    SEED,
    Clock,
    Driver,
    Parties,
    balance,
    held,
    hexed,
    last_folded,
    plain,
    reverts,
    trace_roots,
)

TRUE_ROOTS = trace_roots(6, b"true traces")


def test_the_chain_and_python_agree_on_who_is_forced(pool: Any, params: ProtocolParameters) -> None:
    forced = 0
    for i in range(120):
        secret, randomness = keccak(b"s" + bytes([i])), keccak(b"r" + bytes([i]))
        claimed = keccak(b"b" + bytes([i]))
        expected = forced_error(secret, randomness, claimed, params.forcedErrorPpm)
        assert pool.forcedError(hexed(secret), hexed(randomness), hexed(claimed)) == expected
        forced += expected
    # p = 25 % here: 120 draws land far from 0 and from 120.
    assert 10 < forced < 60
    assert forced_below(1_000_000) > 2**256 - 2**236  # p = 1 forces all but a negligible share
    assert forced_below(0) == 0


def test_an_unforced_verifier_reveals_settles_and_everyone_is_paid_at_once(
    pool: Any, driver: Driver, parties: Parties, clock: Clock
) -> None:
    task_id = driver.to_status(Status.CHALLENGE_WINDOW, forced=False)
    secret = driver.secrets[task_id]
    assert not driver.forced(task_id, secret)
    amounts = driver.amounts()
    driver.past_deadline(task_id)
    before = balance(parties.verifier)
    solver_before = balance(parties.solver)
    tx = driver.reveal(task_id, secret)
    assert plain(tx.events["VerificationRevealed"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "secret": hexed(secret),
        "forced": False,
        "traceRoots": trace_roots(6),
        "challengeDeadline": 0,
    }
    settled = tx.events["TaskSettled"]
    assert settled["outcome"] == Outcome.PASSED
    # The forced-error tax comes out of the fee: the stake comes back whole.
    assert 0 < amounts.forced_error_tax <= amounts.verification_fee
    assert settled["toJackpot"] == amounts.forced_error_tax
    paid = amounts.verification_fee - amounts.forced_error_tax + amounts.verifier_stake
    assert balance(parties.verifier) - before == paid
    assert "ForcedErrorUncaught" not in tx.events
    solver_share = amounts.bounty - amounts.verification_fee + amounts.solver_stake
    assert balance(parties.solver) - solver_before == solver_share
    assert pool.owed(task_id, parties.verifier) == pool.owed(task_id, parties.solver) == 0
    assert sum(held(pool, task_id)) == 0
    assert driver.status(task_id) == Status.SETTLED


def test_a_forced_verifier_that_errs_is_replaced_by_its_true_report_and_not_slashed(
    pool: Any, jackpot: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    jackpot.fund({"from": parties.deployer, "value": 10 * 10**18})
    task_id = driver.to_status(Status.VERIFYING, forced=True)
    secret = driver.secrets[task_id]
    assert driver.forced(task_id, secret)
    # It reports a wrong root and seals the true one; the verdict (from the distances) is kept.
    driver.report(task_id, secret=secret, true_roots=TRUE_ROOTS)
    driver.past_deadline(task_id)
    tx = driver.reveal(task_id, secret, TRUE_ROOTS)
    revealed = tx.events["VerificationRevealed"]
    assert (revealed["forced"], plain(revealed["traceRoots"])) == (True, TRUE_ROOTS)
    assert revealed["challengeDeadline"] == tx.timestamp + params.challengeWindow
    assert "TaskSettled" not in tx.events
    # Nobody caught it: the verifier itself gets the award its catchers would have shared.
    amounts = driver.amounts()
    reserve = 10 * 10**18 + int(tx.events["JackpotSwept"]["amount"])
    award = forced_error_award(amounts, reserve, 0)
    assert award == amounts.verifier_stake  # the cap (a third of the reserve) is above the stake
    assert plain(tx.events["ForcedErrorUncaught"]) == {
        "taskId": task_id,
        "verifier": parties.verifier,
        "award": award,
    }
    assert "ForcedErrorCaught" not in tx.events
    assert int(jackpot.owed(parties.verifier)) == award
    task = pool.task(task_id)
    assert (task["status"], task["deadline"]) == (
        Status.CHALLENGE_WINDOW,
        revealed["challengeDeadline"],
    )
    assert task["flags"] & Flag.FORCEABLE == 0
    # The true report is open to challenge for a whole window, then settles as usual.
    with reverts("DeadlineNotReached", task_id, revealed["challengeDeadline"]):
        pool.settle(task_id, {"from": parties.stranger})
    settled = driver.settle(task_id).events["TaskSettled"]
    assert settled["outcome"] == Outcome.PASSED
    paid = amounts.verification_fee - amounts.forced_error_tax + amounts.verifier_stake
    assert (settled["toVerifier"], settled["toJackpot"]) == (paid, amounts.forced_error_tax)
    assert last_folded(pool, task_id, "VerificationRevealed").args["forced"] is True


def test_a_forced_verifier_that_does_not_err_forfeits(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.VERIFYING, forced=True)
    secret = driver.secrets[task_id]
    driver.report(task_id, secret=secret)  # reported root == sealed root: no error
    driver.past_deadline(task_id)
    tx = driver.reveal(task_id, secret)
    assert tx.events["VerificationRevealed"]["forced"] is True
    settled = tx.events["TaskSettled"]
    amounts = driver.amounts()
    assert settled["toVerifier"] == 0
    assert settled["toJackpot"] == amounts.verification_fee + amounts.verifier_stake
    assert driver.flags(task_id) & Flag.FORFEITED
    assert "ForcedErrorUncaught" not in tx.events  # no error, no award
    assert [e["account"] for e in tx.events["PayoutWithdrawn"]] == [parties.solver]


def test_an_unforced_verifier_that_disowns_its_report_forfeits(driver: Driver) -> None:
    task_id = driver.to_status(Status.VERIFYING, forced=False)
    secret = driver.secrets[task_id]
    driver.report(task_id, secret=secret, true_roots=TRUE_ROOTS)
    driver.past_deadline(task_id)
    tx = driver.reveal(task_id, secret, TRUE_ROOTS)
    assert tx.events["VerificationRevealed"]["forced"] is False
    assert tx.events["TaskSettled"]["toVerifier"] == 0
    assert driver.flags(task_id) & Flag.FORFEITED
    assert "ForcedErrorUncaught" not in tx.events  # an error nobody forced earns nothing


def test_the_reveal_checks_the_secret_the_seal_and_the_record(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.CHALLENGE_WINDOW, forced=False)
    secret = driver.secrets[task_id]
    driver.past_deadline(task_id)
    with reverts("WrongSecret", task_id):
        driver.reveal(task_id, keccak(b"guess"))
    with reverts("WrongSeal", task_id):
        driver.reveal(task_id, secret, TRUE_ROOTS)
    before, claim, drawn, report = driver.reveal_proof(task_id)
    # Another randomness (one that might not force it) cannot be slipped in.
    forged = keccak(b"other randomness") + drawn[32:]
    for args in ((hexed(bytes(32)), claim, drawn, report), (before, claim, forged, report)):
        with reverts("RecordMismatch", task_id):
            pool.revealVerification(
                task_id, hexed(secret), trace_roots(6), *args, {"from": parties.verifier}
            )
    for other in (parties.solver, parties.stranger):
        with reverts("NotAuthorized", task_id, other.address):
            driver.reveal(task_id, secret, by=other)


def test_the_reveal_comes_after_the_challenge_window_and_within_the_reveal_window(
    driver: Driver, clock: Clock, params: ProtocolParameters
) -> None:
    task_id = driver.to_status(Status.CHALLENGE_WINDOW, forced=False)
    secret = driver.secrets[task_id]
    deadline = int(driver.task(task_id)["deadline"])
    clock.next_at(deadline)
    with reverts("DeadlineNotReached", task_id, deadline):
        driver.reveal(task_id, secret)
    last = deadline + params.revealWindow
    clock.next_at(last + 1)
    with reverts("DeadlinePassed", task_id, last):
        driver.reveal(task_id, secret)


def test_nothing_to_reveal_when_the_report_cannot_be_forced(
    driver: Driver, parties: Parties
) -> None:
    task_id = driver.to_status(Status.VERIFYING)
    driver.timeout(task_id)  # the next verifier claims after the randomness exists
    driver.claim_verification(task_id, by=parties.stranger)
    driver.report(task_id, by=parties.stranger)
    driver.past_deadline(task_id)
    with reverts("NothingToReveal", task_id):
        driver.reveal(task_id, SECRET, by=parties.stranger)


def test_a_pool_without_forced_errors_needs_no_reveal(
    project: Any,
    jackpot: Any,
    game: Any,
    driver: Driver,
    parties: Parties,
    params: ProtocolParameters,
) -> None:
    import dataclasses

    from scripts.deploy import deploy_pool, pool_contract
    from tests.contracts.driver import Driver as PoolDriver

    plain_params = dataclasses.replace(params, forcedErrorPpm=0)
    deployed = deploy_pool(project, parties.deployer, plain_params, jackpot.address, game.address)
    other = pool_contract(project, deployed.address)
    d = PoolDriver(other, plain_params, parties, driver.clock)
    task_id = d.to_status(Status.CHALLENGE_WINDOW)
    assert d.flags(task_id) == Flag.RANDOMNESS
    d.clock.next_at(int(d.task(task_id)["deadline"]) + 1)
    tx = other.withdraw([task_id], {"from": parties.solver})
    assert tx.events["TaskSettled"]["outcome"] == Outcome.PASSED


@pytest.mark.parametrize("forced", [True, False])
def test_the_verifier_cannot_choose_whether_it_is_forced(driver: Driver, forced: bool) -> None:
    """Its secret is committed before the solver's seed is revealed and before the block that
    holds its claim exists: the same secret is forced or not depending on the seed's randomness
    and on that block's hash."""
    task_id = driver.to_status(Status.VERIFYING, forced=forced)
    randomness = driver.randomness(task_id)
    claimed = driver.claim_block_hash(task_id)
    secret = driver.secrets[task_id]
    assert driver.forced(task_id, secret) == forced
    assert forced_error(secret, randomness, claimed, 250_000) == forced
    other_seeds = {
        forced_error(secret, keccak(randomness + bytes([i])), claimed, 250_000) for i in range(40)
    }
    other_blocks = {
        forced_error(secret, randomness, keccak(claimed + bytes([i])), 250_000) for i in range(40)
    }
    assert other_seeds == other_blocks == {True, False}


def test_a_pair_that_knows_the_seed_cannot_grind_its_secret_into_a_forced_error(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    """A solver whose sybil verifies its task knows the seed before the claim, so it knows the
    randomness of every secret it could commit. It grinds a secret that is forced for the claim
    block it expects (the latest block's hash, its best guess; under a rule without the block
    hash this picked a forced secret every time), claims, and reveals: the block that holds the
    claim has another hash, and the pair is forced at the rate p, not always. Played on anvil,
    many tasks in bulk, each claim mined in a block whose hash the pair does not choose."""
    from brownie import web3

    from scripts.protocol import randomness, secret_hash

    p = params.forcedErrorPpm
    assert 0 < p < 1_000_000
    tasks, forced, ground = 48, 0, 0
    for _ in range(tasks):
        task_id = driver.to_status(Status.COMMITTED)
        guess = bytes(web3.eth.get_block("latest")["hash"])
        for attempt in range(10_000):
            secret = keccak(b"grind/%d/%d" % (task_id, attempt))
            r = randomness(SEED, secret_hash(secret), task_id)
            if forced_error(secret, r, guess, p):
                break
        ground += attempt + 1
        driver.claim_verification(task_id, secret=secret)
        driver.reveal_seed(task_id)
        assert driver.claim_block_hash(task_id) != guess
        hit = driver.forced(task_id, secret)
        assert bool(driver.flags(task_id) & Flag.FORCEABLE)
        assert (
            bool(pool.forcedError(hexed(secret), hexed(r), hexed(driver.claim_block_hash(task_id))))
            == hit
        )
        forced += hit
    rate = forced / tasks
    print(
        f"grinding pair forced in {forced} of {tasks} tasks ({rate:.2f}; p = {p / 1e6:.2f}); "
        f"{ground / tasks:.1f} secrets tried a task"
    )
    # p = 25 %: 48 draws give 12 on average (standard deviation 3); always forced would be 48.
    assert 2 <= forced <= 24


def test_a_report_that_cannot_be_forced_pays_no_tax(
    pool: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    """Only the first claim comes before the randomness: a verifier of a later round can never be
    forced (nor earn an award), so it pays no tax."""
    task_id = driver.to_status(Status.VERIFYING)
    driver.timeout(task_id)  # the first verifier stalls; the next claims after the randomness
    driver.claim_verification(task_id, by=parties.stranger)
    driver.report(task_id, by=parties.stranger)
    settled = driver.settle(task_id).events["TaskSettled"]
    amounts = driver.amounts()
    assert settled["toVerifier"] == amounts.verification_fee + amounts.verifier_stake
    assert settled["toJackpot"] == 0
    expected = payouts(Outcome.PASSED, amounts, False, params, taxed=False)
    assert plain(pool.payouts(task_id)) == [
        expected.submitter,
        expected.solver,
        expected.verifier,
        expected.profiler,
        expected.jackpot,
    ]


def test_a_seed_revealed_past_the_claim_blocks_reach_slashes_nobody_and_forces_nothing(
    pool: Any, jackpot: Any, driver: Driver, parties: Parties, params: ProtocolParameters
) -> None:
    """Anyone can push the claim's block out of ``blockhash``'s reach by mining 256 blocks before
    the solver reveals (the verifier itself, hoping for a withheld seed). The seed still counts:
    the task is verified and settles as a pass, the solver is paid in full, and the claim is not
    forceable, even with a secret that the claim block's hash forces, so nobody errs, reveals or
    is awarded. Its verifier still pays the tax: a solver whose sybil verifies knows whether the
    claim is forced before it reveals, and waiting must not spare the pair the tax when it is
    not (docs/threat-model.md)."""
    from brownie import web3

    from scripts.protocol import randomness, secret_hash

    task_id = driver.to_status(Status.COMMITTED)
    secret = driver.verify_with(task_id, forced=True, draw=False)
    claim = last_folded(pool, task_id, "VerificationClaimed")
    claim_block = int(claim.args["claimBlock"])
    r = randomness(SEED, secret_hash(secret), task_id)
    claim_hash = bytes(web3.eth.get_block(claim_block)["hash"])
    assert forced_error(secret, r, claim_hash, params.forcedErrorPpm)  # in reach, it would be

    driver.clock.mine(256)
    tx = driver.reveal_seed(task_id)
    assert tx.block_number - claim_block == 257
    assert plain(tx.events["RandomnessDrawn"])["claimBlockHash"] == hexed(bytes(32))
    assert driver.flags(task_id) == Flag.RANDOMNESS
    assert not driver.forced(task_id, secret)
    assert not pool.forcedError(hexed(secret), hexed(r), hexed(bytes(32)))

    driver.report(task_id, secret=secret)  # its true roots: it is not forced
    driver.past_deadline(task_id)
    with reverts("NothingToReveal", task_id):
        driver.reveal(task_id, secret)
    amounts = driver.amounts()
    solver_before = balance(parties.solver)
    verifier_before = balance(parties.verifier)
    reserve = int(jackpot.reserve())
    tx = pool.withdraw([task_id], {"from": parties.solver})
    settled = tx.events["TaskSettled"]
    assert settled["outcome"] == Outcome.PASSED
    expected = payouts(Outcome.PASSED, amounts, False, params, taxed=True)
    assert plain(pool.payouts(task_id)) == [
        expected.submitter,
        expected.solver,
        expected.verifier,
        expected.profiler,
        expected.jackpot,
    ]
    assert balance(parties.solver) - solver_before == (
        amounts.bounty - amounts.verification_fee + amounts.solver_stake
    )
    assert settled["toJackpot"] == amounts.forced_error_tax > 0
    pool.withdraw([task_id], {"from": parties.verifier})
    assert balance(parties.verifier) - verifier_before == expected.verifier
    assert "ForcedErrorUncaught" not in tx.events and "ForcedErrorCaught" not in tx.events
    assert int(jackpot.reserve()) == reserve and int(jackpot.owed(parties.verifier)) == 0


def test_a_pair_that_knows_its_claim_is_not_forced_gains_nothing_by_waiting(
    pool: Any, driver: Driver, parties: Parties
) -> None:
    """A solver whose sybil verifies its task knows the seed and the secret, so it knows that the
    claim is not forced as soon as the claim's block is mined. Revealing the seed in time or
    waiting until the claim block's hash is out of reach then pays the pair exactly the same:
    the forced-error tax is due either way. (Were a late claim untaxed, the pair would wait
    whenever the claim is not forced and reveal in time when it is, keeping the chance at the
    award and paying the tax only on forced claims.)"""
    from scripts.network import revert, snapshot

    task_id = driver.to_status(Status.COMMITTED)
    secret = driver.verify_with(task_id, forced=False, draw=False)
    pair = (parties.solver, parties.verifier)

    def income(wait: bool) -> int:
        before = sum(balance(a) for a in pair)
        if wait:
            driver.clock.mine(256)
        driver.reveal_seed(task_id)
        assert bool(driver.flags(task_id) & Flag.FORCEABLE) != wait
        driver.report(task_id, secret=secret)
        driver.finish(task_id, secret)  # the verifier's reveal in time; a plain settlement late
        for account in pair:
            if int(pool.owed(task_id, account)):
                pool.withdraw([task_id], {"from": account})
        assert driver.status(task_id) == Status.SETTLED and sum(held(pool, task_id)) == 0
        return sum(balance(a) for a in pair) - before

    start = snapshot()
    in_time = income(wait=False)
    revert(start)
    late = income(wait=True)
    a = driver.amounts()
    assert a.forced_error_tax > 0
    assert in_time == late == a.bounty + a.solver_stake + a.verifier_stake - a.forced_error_tax


def test_an_uncaught_forced_error_is_awarded_once_and_at_most_a_third_of_the_reserve(
    pool: Any, jackpot: Any, driver: Driver, parties: Parties
) -> None:
    """With a small reserve the award is a third of it (after the pool's sweep); the task's later
    settlement and withdrawals award nothing more."""
    task_id = driver.to_status(Status.VERIFYING, forced=True)
    secret = driver.secrets[task_id]
    driver.report(task_id, secret=secret, true_roots=TRUE_ROOTS)
    driver.past_deadline(task_id)
    reserve = int(jackpot.reserve())
    tx = driver.reveal(task_id, secret, TRUE_ROOTS)
    swept = int(tx.events["JackpotSwept"]["amount"]) if "JackpotSwept" in tx.events else 0
    amounts = driver.amounts()
    award = forced_error_award(amounts, reserve + swept, 0)
    assert award == (reserve + swept) // 3 < amounts.verifier_stake
    assert tx.events["ForcedErrorUncaught"]["award"] == award
    assert int(jackpot.owed(parties.verifier)) == award
    with reverts("NothingToReveal", task_id):
        driver.reveal(task_id, secret, TRUE_ROOTS)
    tx = driver.settle(task_id)
    assert "ForcedErrorUncaught" not in tx.events and "Awarded" not in tx.events
    assert int(jackpot.owed(parties.verifier)) == award
