"""What a player of the pinpoint game does next: pure functions of the game and a trace.

``decide(game, me, provider, opponent, now=..., bond=..., bits=...)`` returns the one move
party ``me`` makes now, or ``None`` (nothing owed, or waiting for the opponent's move to
be readable). It never looks at a clock or a chain itself: the caller passes the game
as the contract shows it, the opponent's latest revealed data (from its events), the
time and the bond. The same function plays both sides; a player whose trace lies
(``agents.dispute.replay.Fault``) plays by it too and is ruled out by the chain.

A round of two moves (a descent, ``Record``, ``Leaf``, ``Terms``) is opened by one party
and answered by the other; the contract takes either order, but two openings of one round
race and the later one is refused. So the challenger opens the odd rounds and the defender
the even ones (``opener``), and the other party waits for the opening to be on chain and
answers it. A party that waits opens the round itself once half of the time its clock had
at the round's start has passed without the opening (``opens_at``): its clock runs while
it waits, and the other half (at least half the contract's extension) is left to send its
opening, after which only the silent opener's clock runs.

At every level it answers from its own trace (docs/dispute.md):
- a descent (``Steps``, ``Ops``, ``Element``): the ``2^h`` nodes below its current node,
  with the opponent's nodes when the opponent moved first in the round;
- ``Record``: its record of the disputed op, and, as the second to reveal when both
  records differ only in their outputs, the op's program entry;
- ``Program``, ``Input``, ``Tensor``: the proof that decides, if its own record (or
  tensor) is the one the program and the agreed prefix give, and the opponent's is not;
- ``Leaf``: its leaf of the disputed output; ``Terms``: its partial results at the
  dissection points; ``OneStep``: the one step, if it computes its own value;
- any time: ``timeout`` once the opponent has run out of time (and it has not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from eth_utils.crypto import keccak

from agents.arbiter.elements import REDUCTIONS
from agents.arbiter.execute import execute
from agents.dispute.game import DESCENTS, GameState, Move, OpponentMove, Party, Phase
from agents.dispute.program import SourceKind
from agents.dispute.provider import TraceProvider, header_numel, record_prefix
from agents.dispute.reductions import continue_partials, partials_at
from agents.dispute.tree import depth
from agents.exact.errors import ExactError
from agents.exact.trace import Op, OpRecord

ZERO32 = bytes(32)
EMPTY_RECORD: tuple[bytes, bytes, bytes] = (b"", b"", ZERO32)
EMPTY_ENTRY: tuple[bytes, bytes, list[bytes]] = (b"", b"", [])
EMPTY_CONSTANTS: tuple[bytes, list[bytes]] = (b"", [])
EMPTY_CHUNK: tuple[int, bytes, list[bytes]] = (0, ZERO32, [])


def term_points(lo: int, hi: int, bits: int) -> list[int]:
    """The points of a ``Terms`` round: at most ``2^bits − 1``, evenly spaced inside (lo, hi)."""
    count = min((1 << bits) - 1, hi - lo - 1)
    return [lo + (hi - lo) * k // (count + 1) for k in range(1, count + 1)]


PAIRED = (*DESCENTS, Phase.RECORD, Phase.LEAF, Phase.TERMS)


def opener(game: GameState) -> Party:
    """The party that opens the current round: the challenger in odd rounds (the first round
    included: the challenger started the game and has its trace at hand), the defender in
    even ones, so that each waits for the other equally often."""
    return Party.CHALLENGER if game.round % 2 else Party.DEFENDER


def opens_at(game: GameState, me: Party) -> int:
    """The time from which party ``me`` opens the current round if the opponent has not: at
    once (0) for the round's opener, or outside a round of two moves; for the other party
    once half of the time its clock had at the round's start has run. That time is at least
    the contract's extension (a round tops every clock up to it), so half of it is left to
    send the opening before the clock runs out."""
    since = game.since[me]
    if game.phase not in PAIRED or me == opener(game) or since == 0:
        return 0
    return since + game.left[me] // 2


def _key(game: GameState, function: str, second: bool = False) -> str:
    return f"game/{game.game_id}/{function}/{game.round}" + ("/second" if second else "")


def decide(
    game: GameState,
    me: Party,
    provider: TraceProvider,
    opponent: OpponentMove | None,
    *,
    now: int,
    bond: int,
    bits: int,
) -> Move | None:
    """Party ``me``'s next move in ``game`` (see the module docstring), or ``None``."""
    if game.phase in (Phase.NONE, Phase.RESOLVED):
        return None
    if game.expired(me, now):
        return None  # out of time: only the opponent (or anyone) can end it now
    if game.expired(me.other, now):
        return Move(_key(game, "timeout"), "timeout", (game.game_id,), note="opponent out of time")
    if game.phase in PAIRED:
        second = _second(game, me, opponent, now)
        if second is None:
            return None
        if game.phase in DESCENTS:
            return _dissect(game, second, provider, opponent, bond, bits)
        if game.phase == Phase.RECORD:
            return _reveal_record(game, second, provider, opponent, bond)
        if game.phase == Phase.LEAF:
            return _reveal_leaf(game, second, provider, opponent, bond)
        return _bisect_terms(game, second, provider, opponent, bond, bits)
    if game.phase == Phase.PROGRAM:
        return _prove_program(game, me, provider, opponent)
    if game.phase in (Phase.INPUT, Phase.TENSOR):
        return _prove_source(game, me, provider, opponent)
    return _one_step(game, me, provider)


def _second(game: GameState, me: Party, opponent: OpponentMove | None, now: int) -> bool | None:
    """Whether this move hands back the opponent's (True), or opens the round (False);
    ``None`` when this party has moved in the round already, when the opponent moved but its
    move is not readable yet, or when this party waits for the opponent to open the round."""
    if game.has_moved(me):
        return None
    if not game.has_moved(me.other):
        return False if now >= opens_at(game, me) else None
    return True if opponent is not None else None


def _paired(
    game: GameState,
    function: str,
    second: bool,
    mine: list[Any],
    theirs: Sequence[Any],
    bond: int,
    note: str,
) -> Move | None:
    """A round's move that posts ``mine`` and, as the second mover, hands back the opponent's
    ``theirs`` (``None`` while what was read of the opponent is of another round)."""
    handed = list(theirs) if second else []
    if second and len(handed) != len(mine):
        return None
    return Move(
        _key(game, function, second), function, (game.game_id, mine, handed), bond, note=note
    )


def current_tree_nodes(game: GameState, provider: TraceProvider, levels: int) -> list[bytes]:
    """The ``2^levels`` nodes below the current node of a descent, in this provider's trace."""
    if game.phase == Phase.STEPS:
        tree = provider.trace_tree
    elif game.phase == Phase.OPS:
        tree = provider.step_tree(game.step)
    else:
        tree = provider.output_tree(game.step, game.op)
    return tree.children(game.height, game.index, levels)


def _dissect(
    game: GameState,
    second: bool,
    provider: TraceProvider,
    opponent: OpponentMove | None,
    bond: int,
    bits: int,
) -> Move | None:
    nodes = current_tree_nodes(game, provider, min(bits, game.height))
    note = f"{game.phase.name.lower()} level, node {game.index}, height {game.height}"
    theirs = opponent.nodes if opponent is not None else ()
    return _paired(game, "dissect", second, nodes, theirs, bond, note)


def _reveal_record(
    game: GameState, second: bool, provider: TraceProvider, opponent: OpponentMove | None, bond: int
) -> Move | None:
    record = provider.record(game.step, game.op)
    mine = (
        record.encode(),
        provider.output_header(game.step, game.op),
        provider.output_merkle(game.step, game.op),
    )
    theirs = EMPTY_RECORD
    entry = EMPTY_ENTRY
    if second:
        assert opponent is not None
        if not opponent.record:
            return None
        theirs = (opponent.record, opponent.header, opponent.merkle)
    else:
        entry = entry_proof(provider, game.step, game.op)
    return Move(
        _key(game, "revealRecord", second),
        "revealRecord",
        (game.game_id, mine, theirs, entry),
        bond,
        note=f"record of op {game.op} ({record.op.name}) of step {game.step}",
    )


def entry_proof(provider: TraceProvider, step: int, op: int) -> tuple[bytes, bytes, list[bytes]]:
    """The ``EntryProof`` of op ``op`` of step ``step``: program header, entry, proof (what the
    first ``revealRecord`` of a game carries)."""
    program = provider.program
    distance = step == provider.step_count
    return (
        program.header().encode(),
        program.template(distance)[op].encode(),
        program.entry_proof(distance, op),
    )


def known_entry(
    provider: TraceProvider, step: int, op: int, header: bool
) -> tuple[bytes, bytes, list[bytes]]:
    """The entry of op ``op`` of step ``step`` as ``proveProgram`` and ``proveSource`` take it
    (the game proved it with the first record): no Merkle proof, and the program header only
    where the proof reads it (``header``)."""
    program = provider.program
    distance = step == provider.step_count
    encoded = program.header().encode() if header else b""
    return (encoded, program.template(distance)[op].encode(), [])


def constants_proof(provider: TraceProvider, step: int) -> tuple[bytes, list[bytes]]:
    """The ``ConstantsProof`` of local training step ``step``."""
    global_step = provider.first_step + step
    return provider.constants(step).encode(), provider.program.constants_proof(global_step)


def _prove_program(
    game: GameState, me: Party, provider: TraceProvider, opponent: OpponentMove | None
) -> Move | None:
    if opponent is None or not opponent.record:
        return None
    record = provider.record(game.step, game.op)
    expected = (
        provider.expected_prefix(game.step, game.op) + provider.entry(game.step, game.op).header
    )
    mine_ok = record_prefix(record) + provider.output_header(game.step, game.op) == expected
    theirs_ok = _prefix_of(opponent.record) + opponent.header == expected
    if not mine_ok or theirs_ok:
        return None
    theirs = (opponent.record, opponent.header, opponent.merkle)
    entry = provider.entry(game.step, game.op)
    constants = constants_proof(provider, game.step) if entry.uses_scalars() else EMPTY_CONSTANTS
    return Move(
        _key(game, "proveProgram"),
        "proveProgram",
        (
            game.game_id,
            int(me.other),
            theirs,
            known_entry(provider, game.step, game.op, header=entry.uses_scalars()),
            constants,
        ),
        note="the opponent's record is not the program's",
    )


def _prefix_of(record: bytes) -> bytes:
    """A record's bytes before its input roots (``b""`` if malformed)."""
    try:
        return record_prefix(OpRecord.decode(record))
    except ExactError:
        return b""


def _inputs_of(record: bytes) -> tuple[bytes, ...]:
    return OpRecord.decode(record).inputs


def _prove_source(
    game: GameState, me: Party, provider: TraceProvider, opponent: OpponentMove | None
) -> Move | None:
    step, op = game.step, game.op
    if game.phase == Phase.TENSOR:
        slot = game.element
        mine_root = provider.state_roots(step)[slot]
        theirs_root = game.nodes[me.other]
        accused_record = b""
    else:
        if opponent is None or not opponent.record:
            return None
        mine_inputs = provider.record(step, op).inputs
        theirs_inputs = _inputs_of(opponent.record)
        differing = [s for s in range(len(mine_inputs)) if mine_inputs[s] != theirs_inputs[s]]
        if not differing:
            return None
        slot = differing[0]
        mine_root, theirs_root = mine_inputs[slot], theirs_inputs[slot]
        accused_record = opponent.record
    truth = provider.source_root(step, op, slot)
    if mine_root != truth or theirs_root == truth:
        return None
    return Move(
        _key(game, "proveSource"),
        "proveSource",
        (game.game_id, source_proof(provider, step, op, slot, me, me.other, accused_record)),
        note=f"input {slot} of op {op} is not where the program says it comes from",
    )


def source_proof(
    provider: TraceProvider,
    step: int,
    op: int,
    slot: int,
    via: Party,
    accused: Party,
    accused_record: bytes,
) -> tuple[object, ...]:
    """The ``SourceProof`` that input ``slot`` (STATE: tensor ``slot``) of op ``op`` of ``step``
    comes from where the program says, against ``accused`` (whose record is ``accused_record``);
    earlier records are proved in ``via``'s trace."""
    source = provider.entry(step, op).sources[slot]
    kind, index = source.kind, source.index
    source_record = b""
    state_root = ZERO32
    root = ZERO32
    step_proof: list[bytes] = []
    trace_proof: list[bytes] = []
    tensor_proof: list[bytes] = []
    constants = EMPTY_CONSTANTS
    if kind == SourceKind.OP:
        source_record = provider.record(step, index).encode()
        step_proof = provider.step_tree(step).proof(index)
        trace_proof = provider.trace_tree.proof(step)
    elif kind == SourceKind.BATCH:
        constants = constants_proof(provider, step)
    elif kind in (SourceKind.STATE, SourceKind.START, SourceKind.CLAIMED):
        if kind == SourceKind.CLAIMED:
            tree = provider.claimed_tree
        elif kind == SourceKind.START or step == 0:
            tree = provider.state_tree(-1)
        else:
            tree = provider.state_tree(step - 1)
            state_root = tree.root
            step_proof = provider.step_tree(step - 1).proof(len(provider.records(step - 1)) - 1)
            trace_proof = provider.trace_tree.proof(step - 1)
        root = tree.leaf(index)
        tensor_proof = tree.proof(index)
    return (
        int(accused),
        slot,
        accused_record,
        known_entry(provider, step, op, header=kind in (SourceKind.DATASET, SourceKind.BATCH)),
        int(via),
        source_record,
        state_root,
        root,
        step_proof,
        trace_proof,
        tensor_proof,
        constants,
    )


def _reveal_leaf(
    game: GameState, second: bool, provider: TraceProvider, opponent: OpponentMove | None, bond: int
) -> Move | None:
    leaf = provider.leaf(game.step, game.op, game.index)
    theirs: tuple[int, bytes, list[bytes]] = EMPTY_CHUNK
    if second:
        assert opponent is not None
        if len(opponent.leaf) != 1024:
            return None
        theirs = chunk_proof(leaf, opponent.leaf)
    return Move(
        _key(game, "revealLeaf", second),
        "revealLeaf",
        (game.game_id, leaf, theirs),
        bond,
        note=f"leaf {game.index} of the output of op {game.op}",
    )


def chunk_proof(mine: bytes, theirs: bytes) -> tuple[int, bytes, list[bytes]]:
    """The first 32-byte chunk where leaf ``theirs`` differs from ``mine``, with its proof in the
    keccak tree over ``theirs``'s 32 chunks (the tree the first revealer's move stored)."""
    chunks = [theirs[32 * i : 32 * i + 32] for i in range(32)]
    index = next(i for i in range(32) if chunks[i] != mine[32 * i : 32 * i + 32])
    level = chunks
    proof = []
    position = index
    while len(level) > 1:
        proof.append(level[position ^ 1])
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        position >>= 1
    return index, chunks[index], proof


def _bisect_terms(
    game: GameState,
    second: bool,
    provider: TraceProvider,
    opponent: OpponentMove | None,
    bond: int,
    bits: int,
) -> Move | None:
    points = term_points(game.lo, game.hi, bits)
    values = partials_at(provider.partials(game.step, game.op, game.element), points)
    note = f"partial results in ({game.lo}, {game.hi})"
    theirs = opponent.values if opponent is not None else ()
    return _paired(game, "bisectTerms", second, values, theirs, bond, note)


def one_step_value(provider: TraceProvider, game: GameState) -> int | None:
    """What the one step computes for the game's stretch from this provider's inputs of the
    disputed op (recomputed, not read from its output: a trace whose output lies does not
    match it); ``None`` when the op is not defined on them."""
    record = provider.record(game.step, game.op)
    t = provider.tensors(game.step, game.op)
    if record.op not in REDUCTIONS:
        try:
            output = execute(record, t.inputs)
        except ExactError:
            return None
        flat = np.ascontiguousarray(output, dtype=np.float32).reshape(-1)
        if not 0 <= game.element < flat.size:
            return None
        return int(flat[game.element : game.element + 1].view(np.uint32)[0])
    return continue_partials(
        record.op,
        record.attributes,
        t.inputs,
        t.output.shape,
        game.element,
        game.lo,
        game.hi,
        game.acc_lo,
    )


def _one_step(game: GameState, me: Party, provider: TraceProvider) -> Move | None:
    record = provider.record(game.step, game.op)
    if one_step_value(provider, game) != game.values[me]:
        return None
    witness = provider.witness(game.step, game.op, game.element, game.lo, game.hi, game.acc_lo)
    return Move(
        _key(game, "oneStep"),
        "oneStep",
        (game.game_id, record.encode()[:-32], witness),
        note=f"element {game.element} of op {game.op}, terms ({game.lo}, {game.hi}]",
    )


def moves_bound(provider: TraceProvider, bits: int, max_terms: int = 1) -> int:
    """The most moves one party makes in a game over ``provider``'s segment (its geometry alone).

    A round of each descent, the record, the leaf and every ``Terms`` round cost a party one
    move; a game ends with one more (a proof, the one step or a timeout), by either party.
    """

    def rounds(levels: int) -> int:
        return -(-levels // bits)

    program = provider.program
    steps = rounds(depth(provider.step_count + 1))
    worst_op = 0
    for template in (program.step_template, program.distance_template):
        ops = rounds(depth(len(template)))
        for entry in template:
            if entry.op == Op.STATE:
                tail = rounds(depth(program.state_tensors)) + 1
            else:
                numel = header_numel(entry.header)
                leaves = max(1, -(-numel // 256))
                tail = rounds(depth(leaves)) + 1 + _term_rounds(entry.terms, bits, max_terms) + 1
            worst_op = max(worst_op, ops + 1 + tail)
    return steps + worst_op


def _term_rounds(terms: int, bits: int, max_terms: int) -> int:
    """Rounds of ``Terms`` bisection until a stretch of at most ``max_terms`` remains."""
    lo, hi, rounds = 0, terms, 0
    while hi - lo > max_terms:
        points = term_points(lo, hi, bits)
        # The worst case keeps the widest sub-interval.
        edges = [lo, *points, hi]
        widest = max(range(len(edges) - 1), key=lambda i: edges[i + 1] - edges[i])
        lo, hi = edges[widest], edges[widest + 1]
        rounds += 1
    return rounds
