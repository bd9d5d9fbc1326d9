"""The game contract under attack: who may call what, with which bond, when, with which data;
clocks, padding, payouts and the jackpot (toy task, on anvil)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import pytest
from eth_abi.abi import encode
from eth_typing import HexStr
from eth_utils.crypto import keccak

from agents.dispute.decisions import decide, entry_proof, opens_at, source_proof
from agents.dispute.game import GameState, Move, OpponentMove, Party, Phase, Reason, Ruling
from agents.dispute.tree import MerkleLevels
from scripts.arena import (
    BITS,
    CLOCK,
    EXTENSION,
    Arena,
    Player,
    Revealed,
    checkpoint_proofs,
    decoded_logs,
    open_game,
)
from tests.dispute.toy import Fault, ToyClaims, ToyTrace, open_toy_game

SEGMENT = 1


@pytest.fixture(scope="module")
def claims() -> ToyClaims:
    return ToyClaims()


def trace(claims: ToyClaims, fault: Fault | None = None) -> ToyTrace:
    return ToyTrace(SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], fault)


def opening(g: GameState, party: Party, provider: ToyTrace, bond: int) -> Move | None:
    """``party``'s opening of the current round, whether or not the players' turns give it the
    round (the contract takes either order)."""
    at = max(now(), opens_at(g, party))
    return decide(g, party, provider, None, now=at, bond=bond, bits=BITS)


@contextlib.contextmanager
def reverts(deployed: Any, name: str, *args: Any) -> Iterator[None]:
    """Expect a revert with custom error ``name(args)`` exactly (``args`` omitted: any)."""
    from brownie.exceptions import VirtualMachineError, decode_typed_error

    with pytest.raises(VirtualMachineError) as info:
        yield
    message = str(info.value.revert_msg)
    if not args:
        assert message.startswith(name), message
        return
    for abi in (deployed.game.abi, deployed.endgame.abi):
        for entry in abi:
            if entry["type"] == "error" and entry["name"] == name:
                types = [i["type"] for i in entry["inputs"]]
                selector = keccak(f"{name}({','.join(types)})".encode())[:4]
                data = "0x" + (selector + encode(types, list(args))).hex()
                assert message == str(decode_typed_error(HexStr(data))), message
                return
    raise KeyError(name)


def state(deployed: Any, game_id: int) -> GameState:
    return GameState.from_view(game_id, deployed.game.game(game_id))


def now() -> int:
    from brownie import chain

    return int(chain.time())


# --- creation -------------------------------------------------------------------------------


def test_creation_checks_its_inputs(deployed: Any, claims: ToyClaims) -> None:
    game, accounts = deployed.game, deployed.accounts
    honest, lying = trace(claims), trace(claims, Fault("value", 0, op=5, element=0))
    program = honest.program
    roots = claims.roots()
    checkpoints, start_proof, claimed_proof = checkpoint_proofs(roots, SEGMENT)
    bond = game.requiredBond()

    def create(**change: Any) -> Any:
        spec = {
            "program": program.root(),
            "checkpoints": checkpoints,
            "segment": SEGMENT,
            "start": roots[SEGMENT],
            "claimed": roots[SEGMENT + 1],
            "defenderTrace": honest.trace_root,
            "challengerTrace": lying.trace_root,
        }
        args = {
            "header": program.header().encode(),
            "startProof": start_proof,
            "claimedProof": claimed_proof,
            "defender": accounts[1],
            "challenger": accounts[2],
            "value": bond,
        }
        for key, value in change.items():
            (spec if key in spec else args)[key] = value
        return game.create(
            tuple(spec.values()),
            args["header"],
            args["startProof"],
            args["claimedProof"],
            args["defender"],
            args["challenger"],
            {"from": accounts[2], "value": args["value"]},
        )

    with reverts(deployed, "WrongValue", bond, bond - 1):
        create(value=bond - 1)
    with reverts(deployed, "SameParty", accounts[1].address):
        create(challenger=accounts[1])
    with reverts(deployed, "ZeroAddress"):
        create(defender="0x" + "00" * 20)
    with reverts(deployed, "InvalidTraces"):
        create(challengerTrace=honest.trace_root)
    with reverts(deployed, "InvalidTraces"):
        create(defenderTrace=bytes(32))
    with reverts(deployed, "ProgramMismatch"):
        create(header=program.header().encode()[:-1] + b"\x01")
    with reverts(deployed, "InvalidCheckpoint", SEGMENT):
        create(start=roots[0])
    with reverts(deployed, "InvalidCheckpoint", SEGMENT + 1):
        create(claimedProof=start_proof)
    with reverts(deployed, "InvalidCheckpoint", 5):
        create(segment=5)
    tx = create()
    assert tx.events["GameCreated"]["gameId"] == 1
    g = state(deployed, 1)
    assert (g.phase, g.round, g.step_count, g.first_step) == (Phase.STEPS, 1, 3, 3)
    assert g.bonds == (0, bond) and g.left == (CLOCK, CLOCK)
    assert tuple(int(v) for v in game.claimRecord(g.claim)) == (1, 0, 0)


# --- moves ------------------------------------------------------------------------------------


def test_only_the_parties_move_once_per_round_with_their_bond(
    deployed: Any, claims: ToyClaims
) -> None:
    game, accounts = deployed.game, deployed.accounts
    honest, lying = trace(claims), trace(claims, Fault("value", 0, op=5, element=0))
    game_id = open_toy_game(deployed, claims, honest, lying)
    g = state(deployed, game_id)
    bond = game.requiredBond()
    move = opening(g, Party.DEFENDER, honest, bond)
    assert move is not None and move.function == "dissect"
    nodes = move.args[1]
    with reverts(deployed, "NotAParty", game_id, accounts[5].address):
        game.dissect(game_id, nodes, [], {"from": accounts[5], "value": bond})
    with reverts(deployed, "WrongValue", bond, 0):
        game.dissect(game_id, nodes, [], {"from": accounts[1]})
    with reverts(deployed, "NotCommitted", 1):  # the defender's nodes, sent by the challenger
        game.dissect(game_id, nodes, [], {"from": accounts[2], "value": bond})
    with reverts(deployed, "WrongNodeCount", len(nodes), len(nodes) - 1):
        game.dissect(game_id, nodes[:-1], [], {"from": accounts[1], "value": bond})
    with reverts(deployed, "UnknownGame", 99):
        game.dissect(99, nodes, [], {"from": accounts[1], "value": bond})
    with reverts(deployed, "WrongPhase", game_id, int(Phase.STEPS)):
        game.revealRecord(
            game_id,
            (b"", b"", bytes(32)),
            (b"", b"", bytes(32)),
            (b"", b"", []),
            {"from": accounts[1], "value": bond},
        )
    with reverts(deployed, "OpponentMove", game_id):  # nobody moved yet: nothing to hand back
        game.dissect(game_id, nodes, nodes, {"from": accounts[1], "value": bond})
    game.dissect(game_id, nodes, [], {"from": accounts[1], "value": bond})
    with reverts(deployed, "AlreadyMoved", game_id, 0):
        game.dissect(game_id, nodes, [], {"from": accounts[1], "value": bond})
    theirs = decide(
        state(deployed, game_id),
        Party.CHALLENGER,
        lying,
        OpponentMove(nodes=tuple(nodes)),
        now=now(),
        bond=bond,
        bits=BITS,
    )
    assert theirs is not None and theirs.key.endswith("/second")
    forged = list(nodes)
    forged[0] = bytes(32)
    with reverts(deployed, "NotCommitted", 0):  # the defender's nodes, forged by the challenger
        game.dissect(game_id, theirs.args[1], forged, {"from": accounts[2], "value": bond})
    with reverts(deployed, "OpponentMove", game_id):  # the defender moved: its nodes must come back
        game.dissect(game_id, theirs.args[1], [], {"from": accounts[2], "value": bond})
    game.dissect(game_id, *theirs.args[1:], {"from": accounts[2], "value": bond})
    g = state(deployed, game_id)
    assert g.round == 2 and g.moved == 0 and g.bonds == (bond, 2 * bond)


def test_the_endgame_runs_only_inside_the_game(deployed: Any) -> None:
    with reverts(deployed, "NotDelegated"):
        deployed.endgame.revealLeaf(
            1, bytes(1024), (0, bytes(32), []), {"from": deployed.accounts[1]}
        )


# --- clocks -----------------------------------------------------------------------------------


def test_clocks_run_while_a_party_owes_and_the_silent_one_loses(
    deployed: Any, claims: ToyClaims
) -> None:
    from brownie import chain

    game, accounts = deployed.game, deployed.accounts
    honest, lying = trace(claims), trace(claims, Fault("value", 0, op=5, element=0))
    game_id = open_toy_game(deployed, claims, honest, lying)
    bond = game.requiredBond()
    chain.sleep(1_000)
    move = opening(state(deployed, game_id), Party.DEFENDER, honest, bond)
    assert move is not None
    game.dissect(*move.args, {"from": accounts[1], "value": bond})
    g = state(deployed, game_id)
    assert CLOCK - 1_010 <= g.left[0] <= CLOCK - 1_000 and g.since[0] == 0  # stopped
    assert g.since[1] != 0  # the challenger still owes its move
    with reverts(deployed, "ClockNotExpired", game_id):
        game.timeout(game_id, {"from": accounts[5]})
    chain.sleep(CLOCK)
    chain.mine()
    assert game.timeLeft(game_id, int(Party.CHALLENGER)) == 0
    late = decide(
        state(deployed, game_id),
        Party.CHALLENGER,
        lying,
        OpponentMove(nodes=tuple(move.args[1])),
        now=0,
        bond=bond,
        bits=BITS,
    )
    assert late is not None
    with reverts(deployed, "ClockExpired", game_id, 1):
        game.dissect(*late.args, {"from": accounts[2], "value": bond})
    tx = game.timeout(game_id, {"from": accounts[5]})  # anyone may end it
    g = state(deployed, game_id)
    assert (g.ruling, g.reason) == (Ruling.DEFENDER_WINS, Reason.CLOCK)
    assert tx.events["GameResolved"]["bonds"] == 2 * bond
    with reverts(deployed, "WrongPhase", game_id, int(Phase.RESOLVED)):
        game.timeout(game_id, {"from": accounts[5]})


def test_a_turn_starts_with_at_least_the_extension(deployed: Any, claims: ToyClaims) -> None:
    from brownie import chain

    game, accounts = deployed.game, deployed.accounts
    honest, lying = trace(claims), trace(claims, Fault("value", 0, op=5, element=0))
    game_id = open_toy_game(deployed, claims, honest, lying)
    bond = game.requiredBond()
    first = opening(state(deployed, game_id), Party.DEFENDER, honest, bond)
    assert first is not None
    game.dissect(*first.args, {"from": accounts[1], "value": bond})
    chain.sleep(CLOCK - 5)  # the challenger answers at its last second
    second = decide(
        state(deployed, game_id),
        Party.CHALLENGER,
        lying,
        OpponentMove(nodes=tuple(first.args[1])),
        now=now(),
        bond=bond,
        bits=BITS,
    )
    assert second is not None
    game.dissect(*second.args, {"from": accounts[2], "value": bond})
    g = state(deployed, game_id)
    assert g.left[1] == EXTENSION  # topped up: a last-second move does not leave it defenceless
    assert g.left[0] > EXTENSION


# --- proofs that decide ---------------------------------------------------------------------


def play_until(
    arena: Arena, deployed: Any, game_id: int, honest: ToyTrace, lying: ToyTrace, phase: Phase
) -> GameState:
    """Play with both parties until the game reaches ``phase`` (then stop)."""
    bond = deployed.game.requiredBond()
    accounts = deployed.accounts
    players = {Party.DEFENDER: (accounts[1], honest), Party.CHALLENGER: (accounts[2], lying)}
    seen: dict[Party, OpponentMove] = {}
    for _ in range(60):
        g = state(deployed, game_id)
        if g.phase == phase:
            return g
        for party, (account, provider) in players.items():
            move = decide(
                g, party, provider, seen.get(party.other), now=now(), bond=bond, bits=BITS
            )
            if move is None or move.value == 0:
                continue
            tx = getattr(deployed.game, move.function)(
                *move.args, {"from": account, "value": move.value}
            )
            revealed = Revealed()
            revealed.read(decoded_logs(arena.interface, tx))
            seen[party] = _merge(seen.get(party), revealed, party, g.round)
            break
    raise AssertionError(f"the game did not reach {phase}")


def _merge(old: OpponentMove | None, revealed: Revealed, party: Party, round_: int) -> OpponentMove:
    new = revealed.of(party, round_)
    if old is None:
        return new
    return OpponentMove(
        nodes=new.nodes,
        record=new.record or old.record,
        header=new.header or old.header,
        merkle=new.merkle or old.merkle,
        leaf=new.leaf,
        values=new.values,
    )


def test_the_first_record_proves_the_ops_entry(
    arena: Arena, deployed: Any, claims: ToyClaims
) -> None:
    """The first revealer of a record proves the op's program entry; the game keeps its digest,
    op code and term count, and the proofs that follow show that entry without a Merkle proof
    (and no other entry)."""
    game, accounts = deployed.game, deployed.accounts
    bond = game.requiredBond()
    honest, lying = trace(claims), trace(claims, Fault("attribute", 1, op=4))
    game_id = open_toy_game(deployed, claims, honest, lying)
    g = play_until(arena, deployed, game_id, honest, lying, Phase.RECORD)
    first = opening(g, Party.DEFENDER, honest, bond)
    assert first is not None and first.function == "revealRecord"
    header, entry, proof = cast(tuple[bytes, bytes, list[bytes]], first.args[3])
    other = entry_proof(honest, g.step, (g.op + 1) % len(honest.records(g.step)))
    with reverts(deployed, "InvalidMerkleProof"):  # another op's entry, at this op's place
        game.revealRecord(
            *first.args[:3], (header, other[1], proof), {"from": accounts[1], "value": bond}
        )
    with reverts(deployed, "InvalidMerkleProof"):  # no proof
        game.revealRecord(
            *first.args[:3], (header, entry, []), {"from": accounts[1], "value": bond}
        )
    wrong_header = header[:-1] + bytes([header[-1] ^ 1])
    with reverts(deployed, "ProgramMismatch"):
        game.revealRecord(
            *first.args[:3], (wrong_header, entry, proof), {"from": accounts[1], "value": bond}
        )
    game.revealRecord(*first.args, {"from": accounts[1], "value": bond})
    g = state(deployed, game_id)
    program_entry = honest.entry(g.step, g.op)
    assert (g.op_code, g.terms) == (int(program_entry.op), program_entry.terms)
    second = decide(
        g, Party.CHALLENGER, lying, revealed_by(honest, g), now=now(), bond=bond, bits=BITS
    )
    assert second is not None and second.args[3] == (b"", b"", [])
    with reverts(deployed, "OpponentMove", game_id):  # the entry is proved once
        game.revealRecord(*second.args[:3], first.args[3], {"from": accounts[2], "value": bond})
    game.revealRecord(*second.args, {"from": accounts[2], "value": bond})
    g = state(deployed, game_id)
    assert g.phase == Phase.PROGRAM
    move = decide(g, Party.DEFENDER, honest, revealed_by(lying, g), now=now(), bond=bond, bits=BITS)
    assert move is not None and move.function == "proveProgram"
    _, accused, record, known, constants = move.args
    header = cast(tuple[bytes, bytes, list[bytes]], known)[0]
    with reverts(deployed, "InvalidMerkleProof"):  # the entry needs no proof any more
        game.proveProgram(
            game_id, accused, record, (header, entry, proof), constants, {"from": accounts[5]}
        )
    with reverts(deployed, "ProgramMismatch"):  # nor can another entry stand in for it
        game.proveProgram(
            game_id, accused, record, (header, other[1], []), constants, {"from": accounts[5]}
        )
    game.proveProgram(*move.args, {"from": accounts[5]})
    g = state(deployed, game_id)
    assert (g.ruling, g.reason) == (Ruling.DEFENDER_WINS, Reason.PROGRAM)


def revealed_by(provider: ToyTrace, g: GameState) -> OpponentMove:
    """The record ``provider`` revealed in the game's record round."""
    return OpponentMove(
        record=provider.record(g.step, g.op).encode(),
        header=provider.output_header(g.step, g.op),
        merkle=provider.output_merkle(g.step, g.op),
    )


def test_a_false_accusation_proves_nothing(arena: Arena, deployed: Any, claims: ToyClaims) -> None:
    honest, lying = trace(claims), trace(claims, Fault("input", 0, op=1, slot=1))
    game_id = open_toy_game(deployed, claims, honest, lying)
    g = play_until(arena, deployed, game_id, honest, lying, Phase.INPUT)
    record = honest.record(g.step, g.op).encode()
    accusing_honest = source_proof(honest, g.step, g.op, 1, Party.DEFENDER, Party.DEFENDER, record)
    with reverts(deployed, "NothingProven"):
        deployed.game.proveSource(game_id, accusing_honest, {"from": deployed.accounts[5]})
    tampered = list(
        source_proof(
            honest,
            g.step,
            g.op,
            1,
            Party.DEFENDER,
            Party.CHALLENGER,
            lying.record(g.step, g.op).encode(),
        )
    )
    tampered[10] = [bytes(32)] * len(cast(list[bytes], tampered[10]))  # the tensor's proof
    with reverts(deployed, "InvalidMerkleProof"):
        deployed.game.proveSource(game_id, tuple(tampered), {"from": deployed.accounts[5]})
    right = source_proof(
        honest,
        g.step,
        g.op,
        1,
        Party.DEFENDER,
        Party.CHALLENGER,
        lying.record(g.step, g.op).encode(),
    )
    deployed.game.proveSource(game_id, right, {"from": deployed.accounts[5]})  # anyone may prove
    g = state(deployed, game_id)
    assert (g.ruling, g.reason) == (Ruling.DEFENDER_WINS, Reason.SOURCE)


def test_the_one_step_computes_only_the_disputed_op(
    arena: Arena, deployed: Any, claims: ToyClaims
) -> None:
    honest, lying = trace(claims), trace(claims, Fault("value", 1, op=5, element=2))
    game_id = open_toy_game(deployed, claims, honest, lying)
    g = play_until(arena, deployed, game_id, honest, lying, Phase.ONE_STEP)
    other = honest.record(g.step, g.op - 1).encode()[:-32]
    with reverts(deployed, "NotTheDisputedOp"):
        deployed.game.oneStep(game_id, other, [], {"from": deployed.accounts[5]})
    record = honest.record(g.step, g.op).encode()[:-32]
    with reverts(deployed, "NoAnswer"):  # the stand-in has no answer: nothing is decided
        deployed.game.oneStep(game_id, record, [], {"from": deployed.accounts[5]})
    # An op undefined on the agreed inputs rules both parties out.
    question = deployed.table.questionOf(record, g.element, g.lo, g.hi, g.acc_lo)
    deployed.table.answer(question, 0, False, {"from": deployed.accounts[9]})
    deployed.game.oneStep(game_id, record, [], {"from": deployed.accounts[5]})
    assert state(deployed, game_id).ruling == Ruling.BOTH_LOSE


# --- padding ----------------------------------------------------------------------------------


class PaddedTrace(ToyTrace):
    """A trace with junk where a tree is padded: past a step's last record, or past the last
    element of an output's last leaf."""

    def __init__(self, *args: Any, where: str, **kwargs: Any) -> None:
        self.where = where
        super().__init__(*args, **kwargs)

    def step_tree(self, step: int) -> MerkleLevels:
        if self.where == "records" and step == 1:
            leaves = [r.digest() for r in self.records(step)] + [keccak(b"junk")]
            return MerkleLevels(leaves)
        return super().step_tree(step)


def test_junk_where_a_tree_is_padded_loses(arena: Arena, deployed: Any, claims: ToyClaims) -> None:
    honest = trace(claims)
    padded = PaddedTrace(
        SEGMENT, claims.states[SEGMENT], claims.states[SEGMENT + 1], where="records"
    )
    assert padded.trace_root != honest.trace_root
    game_id = open_toy_game(deployed, claims, padded, honest)
    outcome = arena.play(
        game_id,
        Player(Party.DEFENDER, deployed.accounts[1], padded),
        Player(Party.CHALLENGER, deployed.accounts[2], honest),
        honest,
    )
    assert (outcome.state.ruling, outcome.state.reason) == (Ruling.CHALLENGER_WINS, Reason.PADDING)


# --- money ------------------------------------------------------------------------------------


def test_bonds_go_to_the_winner_or_the_jackpot_when_pulled(
    arena: Arena, deployed: Any, claims: ToyClaims
) -> None:
    from brownie import web3

    game, accounts, jackpot = deployed.game, deployed.accounts, deployed.jackpot
    honest = trace(claims)
    won = open_toy_game(deployed, claims, honest, trace(claims, Fault("value", 1, op=5, element=2)))
    arena.play(
        won,
        Player(Party.DEFENDER, accounts[1], honest),
        Player(Party.CHALLENGER, accounts[2], trace(claims, Fault("value", 1, op=5, element=2))),
        honest,
    )
    both = open_toy_game(
        deployed,
        claims,
        trace(claims, Fault("value", 1, op=5, element=2, mask=1)),
        trace(claims, Fault("value", 1, op=5, element=2, mask=2)),
    )
    arena.play(
        both,
        Player(
            Party.DEFENDER, accounts[1], trace(claims, Fault("value", 1, op=5, element=2, mask=1))
        ),
        Player(
            Party.CHALLENGER, accounts[2], trace(claims, Fault("value", 1, op=5, element=2, mask=2))
        ),
        honest,
    )
    assert state(deployed, won).ruling == Ruling.DEFENDER_WINS
    assert state(deployed, both).ruling == Ruling.BOTH_LOSE
    held = sum(state(deployed, g).bonds[0] + state(deployed, g).bonds[1] for g in (won, both))
    assert web3.eth.get_balance(game.address) == held
    to, amount, paid = game.payout(won)
    assert to == accounts[1].address and not paid
    with reverts(deployed, "NothingToWithdraw", accounts[2].address):
        game.withdraw([won, both], {"from": accounts[2]})  # the loser has nothing to take
    before = accounts[1].balance()
    tx = game.withdraw([won, won, both], {"from": accounts[1], "gas_price": 0})
    assert accounts[1].balance() - before == amount  # paid once, though listed twice
    assert [e["gameId"] for e in tx.events["BondsWithdrawn"]] == [won]
    with reverts(deployed, "NothingToWithdraw", accounts[1].address):
        game.withdraw([won], {"from": accounts[1]})
    with reverts(deployed, "NothingToSweep"):
        game.sweepJackpot([won], {"from": accounts[5]})
    reserve = jackpot.reserve()
    _, lost, _ = game.payout(both)
    game.sweepJackpot([both], {"from": accounts[5]})
    assert jackpot.reserve() - reserve == lost
    assert web3.eth.get_balance(game.address) == 0
    with reverts(deployed, "NothingToSweep"):
        game.sweepJackpot([both], {"from": accounts[5]})


def test_transcripts_are_posted_by_the_game_s_parties_after_its_end(
    arena: Arena, deployed: Any, claims: ToyClaims
) -> None:
    game, accounts = deployed.game, deployed.accounts
    honest, lying = trace(claims), trace(claims, Fault("garbage", 0))
    game_id = open_toy_game(deployed, claims, honest, lying)
    cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    with reverts(deployed, "WrongPhase", game_id, int(Phase.STEPS)):
        game.postTranscript(game_id, cid, {"from": accounts[1]})
    arena.play(
        game_id,
        Player(Party.DEFENDER, accounts[1], honest),
        Player(Party.CHALLENGER, accounts[2], lying),
        honest,
    )
    with reverts(deployed, "NotAParty", game_id, accounts[5].address):
        game.postTranscript(game_id, cid, {"from": accounts[5]})
    with reverts(deployed, "InvalidCid", 129):
        game.postTranscript(game_id, "b" * 129, {"from": accounts[1]})
    tx = game.postTranscript(game_id, cid, {"from": accounts[2]})  # even the loser may publish
    assert tx.events["TranscriptPosted"]["cid"] == cid


def test_several_games_against_one_claim_stand_alone(
    arena: Arena, deployed: Any, claims: ToyClaims
) -> None:
    """A challenger who loses on purpose does not stop an honest one from winning."""
    game, accounts = deployed.game, deployed.accounts
    honest = trace(claims)
    claim = trace(claims, Fault("term", 1, op=7, element=1, term=77))  # the defender's lie
    colluding = trace(claims, Fault("value", 0, op=2, element=0))  # a challenger that lies worse
    thrown = open_toy_game(deployed, claims, claim, colluding)
    fair, _ = open_game(
        game,
        honest.program,
        claims.roots(),
        SEGMENT,
        claim.trace_root,
        honest.trace_root,
        accounts[1],
        accounts[3],
        accounts[3],
    )
    # The colluder's game is created first and lost on purpose (it lies earlier than the claim).
    arena.play(
        thrown,
        Player(Party.DEFENDER, accounts[1], claim),
        Player(Party.CHALLENGER, accounts[2], colluding),
        honest,
    )
    assert state(deployed, thrown).ruling == Ruling.DEFENDER_WINS
    arena.play(
        fair,
        Player(Party.DEFENDER, accounts[1], claim),
        Player(Party.CHALLENGER, accounts[3], honest),
        honest,
    )
    assert state(deployed, fair).ruling == Ruling.CHALLENGER_WINS
    for game_id, creator in ((thrown, accounts[2]), (fair, accounts[3])):
        key = state(deployed, game_id).claim
        assert key == bytes(
            game.claimKey(
                creator,
                honest.program.root(),
                checkpoint_proofs(claims.roots(), SEGMENT)[0],
                SEGMENT,
                claim.trace_root,
                accounts[1],
            )
        )
    # Games of one creator against one claim are counted together: the market's creator sees
    # every game against the claim, and one lost game is enough to overturn it.
    market = accounts[4]
    first, _ = open_game(
        game,
        honest.program,
        claims.roots(),
        SEGMENT,
        claim.trace_root,
        colluding.trace_root,
        accounts[1],
        accounts[2],
        market,
    )
    second, _ = open_game(
        game,
        honest.program,
        claims.roots(),
        SEGMENT,
        claim.trace_root,
        honest.trace_root,
        accounts[1],
        accounts[3],
        market,
    )
    key = state(deployed, first).claim
    assert key == state(deployed, second).claim and tuple(
        int(v) for v in game.claimRecord(key)
    ) == (2, 0, 0)
    arena.play(
        first,
        Player(Party.DEFENDER, accounts[1], claim),
        Player(Party.CHALLENGER, accounts[2], colluding),
        honest,
    )
    assert tuple(int(v) for v in game.claimRecord(key)) == (1, 1, 0)
    arena.play(
        second,
        Player(Party.DEFENDER, accounts[1], claim),
        Player(Party.CHALLENGER, accounts[3], honest),
        honest,
    )
    assert tuple(int(v) for v in game.claimRecord(key)) == (0, 1, 1)
    assert np.all([state(deployed, g).phase == Phase.RESOLVED for g in (first, second)])
