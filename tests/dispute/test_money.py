"""Random sequences of game actions, checked for every wei (hypothesis stateful, toy traces).

Any account creates games between honest and lying traces, parties move (sometimes with the
wrong bond), time passes, anyone calls ``timeout``, withdraws or sweeps any list of games.
After every step the game contract holds exactly the bonds of the games not yet paid out,
each sender's balance moved by exactly what it sent or was paid, and the jackpot grew by
exactly what was swept. At the end every game is driven to its end, everything is pulled,
and the contract is empty.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from agents.chain.abi import ContractInterface
from agents.dispute.decisions import decide, one_step_value, opens_at
from agents.dispute.game import GameState, Party, Ruling
from agents.dispute.game import Phase as GamePhase
from scripts.arena import BITS, CLOCK, EXTENSION, Revealed, decoded_logs, open_game
from tests.dispute.toy import Fault, ToyClaims, ToyTrace

FAST_ACTIONS = 100
SLOW_ACTIONS = 2_000
STEPS_PER_RUN = 40
SEGMENT = 1
FAULTS = (
    None,
    Fault("value", 1, op=5, element=2),
    Fault("value", 1, op=5, element=2, mask=1),
    Fault("term", 1, op=7, element=0, term=123),
    Fault("attribute", 1, op=4),
    Fault("input", 0, op=1, slot=1),
    Fault("garbage", 0),
)


class GameMoney(RuleBasedStateMachine):
    deployed: Any
    traces: list[ToyTrace]
    honest: ToyTrace
    claims: ToyClaims
    counter: dict[str, int]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        from brownie import chain

        chain.revert()
        self.game = self.deployed.game
        self.accounts = [self.deployed.accounts[i] for i in range(1, 6)]
        self.bond = int(self.game.requiredBond())
        self.games: dict[int, tuple[ToyTrace, ToyTrace]] = {}
        self.revealed: dict[int, Revealed] = {}
        self.held = 0  # what the books say the contract holds: every bond not yet paid out
        self.interface = ContractInterface("PinpointGame", self.game.address, self.game.abi)

    # --- plumbing -------------------------------------------------------------------------

    def state(self, game_id: int) -> GameState:
        return GameState.from_view(game_id, self.game.game(game_id))

    def unpaid(self) -> int:
        """The bonds of every game not paid out, as the games themselves say."""
        total = 0
        for game_id in self.games:
            g = self.state(game_id)
            if not g.paid:
                total += g.bonds[0] + g.bonds[1]
        return total

    def pick(self, ref: int) -> int | None:
        return None if not self.games else sorted(self.games)[ref % len(self.games)]

    def send(self, sender: Any, value: int, call: Any) -> Any:
        from brownie.exceptions import VirtualMachineError

        self.counter["actions"] += 1
        before = int(sender.balance())
        held = int(self.game.balance())
        try:
            tx = call()
        except VirtualMachineError:
            assert int(sender.balance()) == before and int(self.game.balance()) == held
            return None
        assert int(sender.balance()) == before - value
        assert int(self.game.balance()) == held + value
        self.held += value
        return tx

    # --- rules --------------------------------------------------------------------------------

    @rule(
        defender=st.integers(0, len(FAULTS) - 1),
        challenger=st.integers(0, len(FAULTS) - 1),
        who=st.integers(0, 4),
    )
    def create(self, defender: int, challenger: int, who: int) -> None:
        d, c = self.traces[defender], self.traces[challenger]
        if d.trace_root == c.trace_root:
            return
        creator = self.accounts[who]
        self.counter["actions"] += 1
        before = int(creator.balance())
        game_id, _ = open_game(
            self.game, d.program, self.claims.roots(), SEGMENT, d.trace_root, c.trace_root,
            self.accounts[0], self.accounts[1], creator,
        )  # fmt: skip
        assert int(creator.balance()) == before - self.bond
        self.held += self.bond
        self.games[game_id] = (d, c)
        self.revealed[game_id] = Revealed()

    @rule(
        ref=st.integers(0, 50),
        party=st.sampled_from([Party.DEFENDER, Party.CHALLENGER]),
        wrong=st.booleans(),
        early=st.booleans(),
    )
    def move(self, ref: int, party: Party, wrong: bool, early: bool) -> None:
        game_id = self.pick(ref)
        if game_id is None:
            return
        g = self.state(game_id)
        provider = self.games[game_id][int(party)]
        from brownie import chain

        at = int(chain.time())
        if early:  # a party that opens a round it is to answer (the contract takes either order)
            at = max(at, opens_at(g, party))
        move = decide(
            g,
            party,
            provider,
            self.revealed[game_id].of(party.other, g.round),
            now=at,
            bond=self.bond,
            bits=BITS,
        )
        if move is None:
            return
        if move.function == "oneStep":
            record = self.honest.record(g.step, g.op).encode()[:-32]
            question = self.deployed.table.questionOf(record, g.element, g.lo, g.hi, g.acc_lo)
            value = one_step_value(self.honest, g)
            self.deployed.table.answer(
                question, value or 0, value is not None, {"from": self.deployed.accounts[9]}
            )
        value = move.value + (1 if wrong else 0)
        sender = self.accounts[int(party)]
        tx = self.send(
            sender,
            value,
            lambda: getattr(self.game, move.function)(*move.args, {"from": sender, "value": value}),
        )
        if wrong and value:
            assert tx is None  # a wrong bond never passes
        if tx is not None:
            self.revealed[game_id].read(decoded_logs(self.interface, tx))

    @rule(seconds=st.sampled_from([10, EXTENSION, CLOCK, CLOCK + EXTENSION + 1]))
    def wait(self, seconds: int) -> None:
        from brownie import chain

        chain.sleep(seconds)
        chain.mine()

    @rule(ref=st.integers(0, 50), who=st.integers(0, 4))
    def timeout(self, ref: int, who: int) -> None:
        game_id = self.pick(ref)
        if game_id is not None:
            sender = self.accounts[who]
            self.send(sender, 0, lambda: self.game.timeout(game_id, {"from": sender}))

    @rule(refs=st.lists(st.integers(0, 50), max_size=4), who=st.integers(0, 4))
    def withdraw(self, refs: list[int], who: int) -> None:
        from brownie.exceptions import VirtualMachineError

        ids = [g for g in (self.pick(r) for r in refs) if g is not None]
        sender = self.accounts[who]
        due = 0
        for game_id in set(ids):
            g = self.state(game_id)
            winner = {Ruling.DEFENDER_WINS: g.defender, Ruling.CHALLENGER_WINS: g.challenger}.get(
                g.ruling
            )
            if g.phase == GamePhase.RESOLVED and not g.paid and winner == sender.address:
                due += g.bonds[0] + g.bonds[1]
        self.counter["actions"] += 1
        before, held = int(sender.balance()), int(self.game.balance())
        try:
            self.game.withdraw(ids, {"from": sender})
        except VirtualMachineError:
            assert due == 0
            return
        assert int(sender.balance()) - before == due == held - int(self.game.balance())
        self.held -= due

    @rule(refs=st.lists(st.integers(0, 50), max_size=4), who=st.integers(0, 4))
    def sweep(self, refs: list[int], who: int) -> None:
        from brownie.exceptions import VirtualMachineError

        ids = [g for g in (self.pick(r) for r in refs) if g is not None]
        due = 0
        for game_id in set(ids):
            g = self.state(game_id)
            if g.phase == GamePhase.RESOLVED and not g.paid and g.ruling == Ruling.BOTH_LOSE:
                due += g.bonds[0] + g.bonds[1]
        self.counter["actions"] += 1
        reserve = int(self.deployed.jackpot.reserve())
        try:
            self.game.sweepJackpot(ids, {"from": self.accounts[who]})
        except VirtualMachineError:
            assert due == 0
            return
        assert int(self.deployed.jackpot.reserve()) - reserve == due > 0
        self.held -= due

    @invariant()
    def books_balance(self) -> None:
        assert int(self.game.balance()) == self.held

    def teardown(self) -> None:
        from brownie import chain

        assert self.unpaid() == self.held  # every game's own count agrees with the books
        for game_id in self.games:
            if self.state(game_id).phase != GamePhase.RESOLVED:
                chain.sleep(CLOCK + EXTENSION + 1)
                chain.mine()
                self.game.timeout(game_id, {"from": self.accounts[4]})
        ids = sorted(self.games)
        for account in self.accounts:
            if any(
                self.game.payout(g)[0] == account.address and not self.state(g).paid for g in ids
            ):
                self.game.withdraw(ids, {"from": account})
        if any(self.state(g).ruling == Ruling.BOTH_LOSE and not self.state(g).paid for g in ids):
            self.game.sweepJackpot(ids, {"from": self.accounts[0]})
        assert int(self.game.balance()) == 0
        self.counter["runs"] += 1


def run_actions(deployed: Any, target: int) -> dict[str, int]:
    claims = ToyClaims()
    GameMoney.deployed = deployed
    GameMoney.claims = claims
    GameMoney.traces = [
        ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], f) for f in FAULTS
    ]
    GameMoney.honest = GameMoney.traces[0]
    counter = {"actions": 0, "runs": 0}
    GameMoney.counter = counter
    machine_settings = settings(
        # A call's first example is hypothesis's smallest, a run without steps: ask for enough
        # examples that every call also runs several random ones.
        max_examples=max(4, 2 * target // STEPS_PER_RUN),
        stateful_step_count=STEPS_PER_RUN,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    while counter["actions"] < target:
        run_state_machine_as_test(GameMoney, settings=machine_settings)  # type: ignore[no-untyped-call]
    return counter


def test_every_wei_is_accounted_for(deployed: Any) -> None:
    counter = run_actions(deployed, FAST_ACTIONS)
    assert counter["actions"] >= FAST_ACTIONS and counter["runs"] >= 1


@pytest.mark.slow
def test_every_wei_is_accounted_for_at_length(deployed: Any) -> None:
    assert run_actions(deployed, SLOW_ACTIONS)["actions"] >= SLOW_ACTIONS
