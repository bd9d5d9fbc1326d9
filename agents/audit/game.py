"""``veritrain dispute replay``: a pinpoint game re-executed from its transcript, with no chain.

From a transcript (``agents.audit.transcript``) and a store the replay:

1. **moves**: checks that every move is the transaction its party signed (the raw bytes hash
   to the move's hash, recover to its sender and decode to its function and arguments, sent
   to the game on the transcript's chain) and that the events a move emitted repeat what it
   sent (nodes, records, leaves, partial results, the game's creation). A move or event
   edited by hand fails here and is named (``TamperedTranscriptError``, exit 2);
2. **artifacts**: reads the spec, the start state and the claimed end state the transcript
   names, and checks them against the roots the game was created with (the program derived
   from the spec, the two state roots): an edited or wrong CID is named (exit 2);
3. **claims**: replays the segment from the start state with the exact kernels
   (``ReplayProvider``, the same replay an honest player runs) and follows the game level by
   level: every node, record, leaf and partial result each party revealed is compared with
   the replay (the first where a party departs from it is where it lied), every narrowing
   the chain made (``Narrowed``, ``ElementFound``, ``TermsNarrowed``) is derived again from
   the two parties' moves, and the one step is re-executed in Python from the witness the
   ``oneStep`` transaction carried (leaves proved against the record's input roots);
4. **ruling**: derives the ruling from the game's rules (the one step's value, the accused
   of a program or source proof, the padding, or the clocks re-run from the moves' times) and
   checks the chain's; it also checks that a party whose trace is the replay's lost only by
   its clock, and that the bonds paid are the game's.

Each check is a ``Finding``; the replay's exit status is 0 when all hold, 1 when one does not
(the recorded ruling is not the one the moves give: named), 2 when the input is unusable.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_utils.address import to_checksum_address

from agents.arbiter.elements import REDUCTIONS
from agents.audit.definitions import op_definition
from agents.audit.errors import AuditInputError
from agents.audit.findings import Checked, Finding
from agents.audit.signed import read_signed
from agents.audit.transcript import check_shape, decode_call
from agents.chain.abi import ContractInterface
from agents.chain.errors import ChainError
from agents.commitment import LEAF_VALUES, state_root, verify_merkle_proof
from agents.dispute.decisions import term_points
from agents.dispute.game import Party, Phase, Reason, Ruling
from agents.dispute.program import Program
from agents.dispute.programs import program_of
from agents.dispute.provider import header_numel, record_prefix
from agents.dispute.reductions import continue_partials, partials_at
from agents.dispute.replay import ReplayProvider
from agents.dispute.tree import MerkleLevels, depth
from agents.errors import VeritrainError
from agents.exact.errors import ExactError
from agents.exact.trace import OpRecord
from agents.learning.layout import State
from agents.learning.proof import artifact_limits, decode_checkpoint, read_artifact
from agents.learning.spec import TaskSpec, spec_from_bytes
from agents.learning.task import Task, open_task
from agents.store import ArtifactStore

Progress = Callable[[str, int, int], None]
BONDED = ("dissect", "revealRecord", "revealLeaf", "bisectTerms")
RULINGS = {r.name: r for r in Ruling}
REASONS = {r.name: r for r in Reason}


class TamperedTranscriptError(AuditInputError):
    """A transcript whose moves are not what their parties signed, or whose artifacts are not
    the game's: it names the field."""


def _hex(value: Any) -> bytes:
    text = str(value)
    try:
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)
    except ValueError:
        raise AuditInputError(f"transcript: {text[:40]!r} is not hex") from None


def _bits(value: int | None) -> str:
    return "none" if value is None else f"0x{int(value):08x}"


def _subtree_root(nodes: Sequence[bytes]) -> bytes:
    """The root over ``nodes`` (a power of two), pairs hashed with sha256 as the game does."""
    level = list(nodes)
    while len(level) > 1:
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0] if level else bytes(32)


def _differs_at(recorded: Any, signed: Any, path: str) -> str | None:
    """The first path at which ``recorded`` (from the transcript) differs from ``signed``."""
    if isinstance(signed, list):
        if not isinstance(recorded, list) or len(recorded) != len(signed):
            return path
        for i, (a, b) in enumerate(zip(recorded, signed, strict=True)):
            found = _differs_at(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if isinstance(signed, str) and isinstance(recorded, str):
        return None if recorded.lower() == signed.lower() else path
    return None if recorded == signed else path


@dataclass
class Revealed:
    """One party's revealed data in a move, and whether the replay agrees with it."""

    move: int
    party: str
    what: str
    matches: bool
    detail: str


@dataclass
class PathStep:
    """One level of the bisection as the chain narrowed it: at ``level``, the interval
    ``[lo, hi)`` of ``total`` (steps, records, leaves or terms) was kept."""

    level: str
    detail: str
    lo: int = 0
    hi: int = 0
    total: int = 0


@dataclass
class GameAudit(Checked):
    """The replay of one game."""

    document: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    revealed: list[Revealed] = field(default_factory=list)
    path: list[PathStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parties: dict[str, str] = field(default_factory=dict)
    honest: dict[str, bool] = field(default_factory=dict)
    first_lie: dict[str, str] = field(default_factory=dict)
    expected: tuple[str, str] | None = None
    disputed: dict[str, Any] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    segment: int = 0
    steps: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, Any]:
        d = self.document
        return {
            "game": d["game_id"],
            "contract": d["game"],
            "chain_id": d["chain_id"],
            "holds": self.holds,
            "exit_code": self.exit_code,
            "ruling": d["ruling"],
            "reason": d["reason"],
            "expected": list(self.expected) if self.expected else None,
            "segment": self.segment,
            "steps": list(self.steps),
            "parties": self.parties,
            "honest": self.honest,
            "first_lie": self.first_lie,
            "disputed": self.disputed,
            "findings": [f.to_json() for f in self.findings],
            "revealed": [vars(r) for r in self.revealed],
            "path": [vars(p) for p in self.path],
            "curve": self.curve,
            "notes": self.notes,
        }


# --- 1. moves: what each party signed -------------------------------------------------------


def _check_moves(document: dict[str, Any], game: ContractInterface) -> None:
    chain_id = int(document["chain_id"])
    address = to_checksum_address(str(document["game"]))
    game_id = int(document["game_id"])
    for i, move in enumerate(document["moves"]):
        where = f"moves[{i}]"
        signed = read_signed(_hex(move["raw"]), f"{where}.raw")
        if signed.tx_hash != str(move["tx"]).lower():
            raise TamperedTranscriptError(
                f"{where}.raw: the signed transaction hashes to {signed.tx_hash}, not {move['tx']}"
            )
        if signed.chain_id is not None and signed.chain_id != chain_id:
            raise TamperedTranscriptError(f"{where}.raw: signed for chain {signed.chain_id}")
        if signed.sender != to_checksum_address(str(move["from"])):
            raise TamperedTranscriptError(
                f"{where}.from: {move['from']}, but the transaction was signed by {signed.sender}"
            )
        recipient = str(move["to"])
        if (signed.to or "") != (to_checksum_address(recipient) if recipient else ""):
            raise TamperedTranscriptError(
                f"{where}.to: {recipient or 'none'}, but the transaction was sent to {signed.to}"
            )
        if signed.to != address:
            # Another contract's call (a pool opening the game): only its signature is checked
            # here; what the game recorded of it is held by the commitments that follow.
            if move["function"] or move["args"]:
                raise TamperedTranscriptError(
                    f"{where}.function: a call to {signed.to} is not the game's to decode"
                )
            for j, event in enumerate(move["events"]):
                if int(event["args"].get("gameId", -1)) != game_id:
                    raise TamperedTranscriptError(
                        f"{where}.events[{j}].args.gameId: not game {game_id}"
                    )
            continue
        try:
            function, args = decode_call(game, signed.data)
        except ChainError as exc:
            raise TamperedTranscriptError(f"{where}.raw: {exc}") from None
        if function != move["function"]:
            raise TamperedTranscriptError(
                f"{where}.function: {move['function']}, but the transaction calls {function}"
            )
        differs = _differs_at(move["args"], args, f"{where}.args")
        if differs is not None:
            raise TamperedTranscriptError(f"{differs}: not what {where}'s signed transaction says")
        _check_mirrors(where, move, args, game_id)


# Event fields that repeat a move's arguments: event -> (field, argument path).
_MIRRORS: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "GameCreated": [
        ("spec", (0,)),
        ("programHeader", (1,)),
        ("defender", (4,)),
        ("challenger", (5,)),
    ],
    "Dissected": [("nodes", (1,))],
    "RecordRevealed": [("record", (1, 0)), ("header", (1, 1)), ("merkle", (1, 2))],
    "LeafRevealed": [("leaf", (1,))],
    "TermsPosted": [("values", (1,))],
    "TranscriptPosted": [("cid", (1,))],
}


def _check_mirrors(where: str, move: Mapping[str, Any], args: list[Any], game_id: int) -> None:
    function = move["function"]
    if function == "withdraw" or function == "sweepJackpot":
        subject_ok = game_id in [int(x) for x in args[0]]
    elif function == "create":
        subject_ok = True
    else:
        subject_ok = int(args[0]) == game_id
    if not subject_ok:
        raise TamperedTranscriptError(f"{where}.args[0]: the transaction is about another game")
    for j, event in enumerate(move["events"]):
        name, eargs = event["event"], event["args"]
        at = f"{where}.events[{j}]"
        if int(eargs.get("gameId", -1)) != game_id:
            raise TamperedTranscriptError(f"{at}.args.gameId: not game {game_id}")
        for key, path in _MIRRORS.get(name, []):
            value: Any = args
            for k in path:
                value = value[k]
            if _differs_at(eargs.get(key), value, key) is not None:
                raise TamperedTranscriptError(
                    f"{at}.args.{key} ({name}): not what the signed transaction sent"
                )


# --- 2. artifacts ---------------------------------------------------------------------------


@dataclass
class Inputs:
    spec: TaskSpec
    task: Task
    program: Program
    start: State
    claimed: State


def _read_state(store: ArtifactStore, spec: TaskSpec, cid: str, what: str) -> State:
    limits = artifact_limits(spec)
    try:
        data = read_artifact(store, cid, limits.checkpoint, what)
        return decode_checkpoint(data, what, max_header_bytes=limits.checkpoint_header)
    except VeritrainError as exc:
        raise AuditInputError(f"{what}: {exc}") from None


def _read_inputs(
    document: dict[str, Any], created: Mapping[str, Any], store: ArtifactStore
) -> Inputs:
    artifacts = document["artifacts"]
    spec_args = created["spec"]
    program_root, start_root, claimed_root = (_hex(spec_args[i]) for i in (0, 3, 4))
    for name, key, root in (
        ("spec", "program", program_root),
        ("start", "state_root", start_root),
        ("claimed", "state_root", claimed_root),
    ):
        stated = artifacts[name].get(key)
        if stated is not None and _hex(stated) != root:
            raise TamperedTranscriptError(
                f"artifacts.{name}.{key}: {stated}, but the game was created with 0x{root.hex()}"
            )
    cid = str(artifacts["spec"]["cid"])
    try:
        spec = spec_from_bytes(store.get_bytes(cid), f"spec {cid}")
        task = open_task(spec, store, keep=False)
    except VeritrainError as exc:
        raise AuditInputError(f"artifacts.spec.cid {cid}: {exc}") from None
    program = program_of(task)
    if program.root() != program_root:
        raise TamperedTranscriptError(
            f"artifacts.spec.cid: the spec {cid} gives program 0x{program.root().hex()}, "
            f"the game's is 0x{program_root.hex()}"
        )
    states = []
    for name, root in (("start", start_root), ("claimed", claimed_root)):
        cid = str(artifacts[name]["cid"])
        state = _read_state(store, spec, cid, f"artifacts.{name}.cid {cid}")
        found = state_root(state)
        if found != root:
            raise TamperedTranscriptError(
                f"artifacts.{name}.cid: the state {cid} has root 0x{found.hex()}, the game's "
                f"{name} state is 0x{root.hex()}"
            )
        states.append(state)
    return Inputs(spec, task, program, states[0], states[1])


# --- 3. the one step, from its witness ------------------------------------------------------


def _shape(header: bytes) -> tuple[int, ...]:
    numel, ndim = struct.unpack_from(">QI", header, 0)
    if len(header) != 12 + 8 * ndim:
        raise ValueError("a shape header of the wrong length")
    shape = tuple(int(d) for d in struct.unpack_from(f">{ndim}Q", header, 12))
    if int(np.prod(shape, dtype=object)) != numel:
        raise ValueError("a shape header whose numel is not its shape's")
    return shape


def one_step_from_witness(
    prefix: bytes,
    witness: Sequence[Any],
    output_shape: tuple[int, ...],
    element: int,
    lo: int,
    hi: int,
    acc_lo: int,
) -> tuple[bool, int | None, str]:
    """What the one step computes from a ``oneStep`` call's record and witness: ``(defined,
    value, note)``. The witness's leaves are checked against the record's input roots; values
    the witness does not carry are taken as zero, which matters only if the op reads them
    (the chain would have refused such a witness)."""
    record = OpRecord.decode(prefix + bytes(32))
    if len(witness) != len(record.inputs):
        return False, None, f"{len(witness)} tensor proofs for {len(record.inputs)} inputs"
    inputs = []
    for slot, (proof, root) in enumerate(zip(witness, record.inputs, strict=True)):
        header, merkle, leaves = _hex(proof[0]), _hex(proof[1]), proof[2]
        if hashlib.sha256(header + merkle).digest() != root:
            return False, None, f"the proof of input {slot} does not open its root"
        shape = _shape(header)
        flat = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=np.float32)
        for index, values, path in leaves:
            data = _hex(values)
            leaf_hash = hashlib.sha256(data).digest()
            if not verify_merkle_proof(leaf_hash, int(index), [_hex(p) for p in path], merkle):
                return False, None, f"leaf {index} of input {slot} is not in its tensor"
            chunk = np.frombuffer(data, dtype="<f4")
            first = int(index) * LEAF_VALUES
            take = max(0, min(LEAF_VALUES, flat.size - first))
            flat[first : first + take] = chunk[:take]
        inputs.append(flat.reshape(shape))
    try:
        if record.op in REDUCTIONS:
            value = continue_partials(
                record.op, record.attributes, inputs, output_shape, element, lo, hi, acc_lo
            )
            return True, int(value), ""
        from agents.arbiter.execute import execute

        output = np.ascontiguousarray(execute(record, inputs), dtype=np.float32).reshape(-1)
    except ExactError as exc:
        return False, None, f"undefined: {exc}"
    if not 0 <= element < output.size:
        return False, None, f"element {element} is out of range"
    return True, int(output[element : element + 1].view(np.uint32)[0]), ""


# --- 4. following the game ------------------------------------------------------------------


@dataclass
class _Position:
    phase: Phase = Phase.NONE
    step: int = 0
    op: int = 0
    index: int = 0
    height: int = 0
    leaf: int = 0
    element: int = 0
    terms: int = 0
    lo: int = 0
    hi: int = 0
    acc_lo: int = 0
    values: tuple[int, int] = (0, 0)
    element_found: bool = False
    width: int = 0  # what the current level descends: steps, records or leaves


class _Clocks:
    """The chess clocks (contracts/dispute/PinpointGameBase.sol), re-run from the moves' times."""

    def __init__(self, clock: int, extension: int, start: int) -> None:
        self.extension = extension
        self.left = [clock, clock]
        self.since = [start, start]
        self.moved: set[int] = set()

    def move(self, party: int, now: int) -> None:
        self.left[party] -= now - self.since[party]
        self.since[party] = 0
        self.moved.add(party)
        if len(self.moved) == 2:
            self.start_round(now)

    def start_round(self, now: int) -> None:
        self.moved = set()
        self.left = [max(x, self.extension) for x in self.left]
        self.since = [now, now]

    def expired(self, party: int, now: int) -> bool:
        return self.since[party] != 0 and now > self.since[party] + self.left[party]


def _loser(defender_bad: bool, challenger_bad: bool) -> Ruling:
    if defender_bad and challenger_bad:
        return Ruling.BOTH_LOSE
    return Ruling.CHALLENGER_WINS if defender_bad else Ruling.DEFENDER_WINS


class _Follower:
    """Walks the transcript's moves and events against the replay."""

    def __init__(
        self, audit: GameAudit, provider: ReplayProvider, inputs: Inputs, document: dict[str, Any]
    ) -> None:
        self.audit = audit
        self.p = provider
        self.inputs = inputs
        self.bits = int(document["params"]["dissection_bits"])
        self.bond = int(document["params"]["bond"])
        self.pos = _Position()
        self.round_nodes: dict[int, list[bytes]] = {}
        self.round_values: dict[int, list[int]] = {}
        self.leaves: dict[int, bytes] = {}
        self.records: dict[int, tuple[bytes, bytes, bytes]] = {}
        self.moves = [0, 0]
        self.expected: Ruling | None = None
        self.expected_reason: Reason | None = None
        self.one_step: tuple[bool, int | None] | None = None
        self.clocks: _Clocks | None = None
        self.document = document
        self.parties: list[str] = []
        self.accused: int | None = None
        self.context = ""
        # Each party's node the chain holds it to: its trace root, then the node it narrowed
        # to, its record's digest, its output's Merkle root, its leaf's hash.
        self.nodes: dict[int, bytes] = {}

    def party_of(self, address: str) -> int | None:
        a = to_checksum_address(address)
        return self.parties.index(a) if a in self.parties else None

    def committed(self, at: str, party: int, digest: bytes, what: str) -> None:
        """What ``party`` revealed hashes to the node it is held to (the chain refused anything
        else, so a mismatch is an edited transcript: its creation or this move)."""
        node = self.nodes.get(party)
        if node is not None and digest != node:
            raise TamperedTranscriptError(
                f"{at}: what the {Party(party).name.lower()} revealed ({what}) does not hash "
                f"to its node 0x{node.hex()} (the game's creation, or this move, was edited)"
            )

    def reveal(self, move: int, party: int, what: str, matches: bool, detail: str) -> None:
        name = Party(party).name.lower()
        self.audit.revealed.append(Revealed(move, name, what, matches, detail))
        if not matches and name not in self.audit.first_lie:
            self.audit.first_lie[name] = f"moves[{move}] {what}: {detail}"

    def tree(self) -> MerkleLevels:
        pos = self.pos
        if pos.phase == Phase.STEPS:
            return self.p.trace_tree
        if pos.phase == Phase.OPS:
            return self.p.step_tree(pos.step)
        return self.p.output_tree(pos.step, pos.op)

    def run(self) -> None:
        document = self.document
        for i, move in enumerate(document["moves"]):
            function = move["function"]
            now = int(move["time"])
            sender = self.party_of(str(move["from"])) if self.parties else None
            if function in BONDED and sender is not None and self.clocks is not None:
                # The move stops its party's clock before anything it emits.
                self.moves[sender] += 1
                self.clocks.move(sender, now)
            for j, event in enumerate(move["events"]):
                self.event(i, j, event["event"], event["args"], move, now)

    def event(
        self, i: int, j: int, name: str, a: Mapping[str, Any], move: Mapping[str, Any], now: int
    ) -> None:
        at = f"moves[{i}].events[{j}] {name}"
        pos = self.pos
        audit = self.audit
        if name == "GameCreated":
            self.parties = [
                to_checksum_address(a["defender"]),
                to_checksum_address(a["challenger"]),
            ]
            params = self.document["params"]
            self.clocks = _Clocks(int(params["clock"]), int(params["extension"]), now)
            self.nodes = {0: _hex(a["spec"][5]), 1: _hex(a["spec"][6])}
            self.moves = [0, 1]  # the creation carries the challenger's first bond
        elif name == "LevelEntered":
            pos.phase = Phase(int(a["phase"]))
            at_, height = int(a["at"]), int(a["height"])
            # The contract announces a level with its width (``at``); the height of its tree
            # is the depth over that width (only the steps' level states it).
            if pos.phase == Phase.STEPS:
                pos.index, pos.height, pos.width = 0, height, at_ + 1
            elif pos.phase == Phase.ELEMENT:
                pos.index, pos.height, pos.width = 0, depth(at_), at_
            elif pos.phase == Phase.OPS:
                pos.step, pos.index = at_, 0
                pos.width = len(self.p.records(at_))
                pos.height = depth(pos.width)
            elif pos.phase == Phase.RECORD:
                pos.op = at_
            elif pos.phase == Phase.LEAF:
                pos.leaf = at_
            level = {
                Phase.STEPS: f"{self.p.step_count} steps and the distance computation",
                Phase.OPS: (
                    "the distance computation"
                    if at_ == self.p.step_count
                    else f"step {self.p.first_step + at_} (local {at_})"
                ),
                Phase.RECORD: f"op {at_} ({self._op_name(pos.step, at_)})",
                Phase.ELEMENT: f"the output of op {pos.op}",
                Phase.LEAF: f"leaf {at_}",
                Phase.TERMS: f"{pos.terms} terms of element {pos.element}",
                Phase.ONE_STEP: f"element {pos.element}, terms ({pos.lo}, {pos.hi}]",
            }.get(pos.phase, pos.phase.name.lower())
            if pos.phase in (Phase.STEPS, Phase.OPS, Phase.ELEMENT):
                self.context = level  # its narrowings say where they are
            else:
                audit.path.append(PathStep(pos.phase.name.lower().replace("_", " "), level))
        elif name == "Dissected":
            party = int(a["party"])
            nodes = [_hex(n) for n in a["nodes"]]
            levels = max(0, len(nodes).bit_length() - 1)
            # The event names the node dissected and how many levels below it are revealed.
            expected_levels = min(self.bits, pos.height)
            if (int(a["index"]), int(a["height"])) != (pos.index, expected_levels):
                audit.add(
                    "game",
                    f"{at}: the node a party dissects is the game's current node",
                    f"node {a['index']}, {a['height']} levels revealed",
                    f"node {pos.index}, {expected_levels} levels revealed",
                    False,
                )
            self.committed(at, party, _subtree_root(nodes), f"{len(nodes)} nodes")
            honest = self.tree().children(pos.height, pos.index, levels)
            wrong = [k for k in range(len(nodes)) if k >= len(honest) or nodes[k] != honest[k]]
            detail = (
                f"{len(nodes)} nodes below node {pos.index} ({pos.phase.name.lower()})"
                if not wrong
                else f"node {(pos.index << levels) + wrong[0]} is not the replay's"
            )
            self.reveal(i, party, f"{pos.phase.name.lower()} nodes", not wrong, detail)
            self.round_nodes[party] = nodes
        elif name == "Narrowed":
            mine, theirs = self.round_nodes.get(0, []), self.round_nodes.get(1, [])
            levels = max(0, len(mine).bit_length() - 1)
            first = next(
                (k for k in range(len(mine)) if k >= len(theirs) or mine[k] != theirs[k]), 0
            )
            index, height = (pos.index << levels) + first, pos.height - levels
            got = (int(a["index"]), int(a["height"]))
            audit.add(
                "game",
                f"{at}: the first node where the parties differ",
                f"node {got[0]} at height {got[1]}",
                f"node {index} at height {height}",
                got == (index, height),
            )
            pos.index, pos.height = index, height
            for party, revealed_nodes in self.round_nodes.items():
                if first < len(revealed_nodes):
                    self.nodes[party] = revealed_nodes[first]
            self.round_nodes = {}
            lo, hi = index << height, min((index + 1) << height, pos.width)
            unit = {Phase.STEPS: "steps", Phase.OPS: "records", Phase.ELEMENT: "leaves"}
            one = {Phase.STEPS: "step", Phase.OPS: "record", Phase.ELEMENT: "leaf"}
            audit.path.append(
                PathStep(
                    pos.phase.name.lower(),
                    (
                        f"{unit.get(pos.phase, 'nodes')} {lo} … {hi - 1}"
                        if hi - lo > 1
                        else f"{one.get(pos.phase, 'node')} {lo}"
                    )
                    + f" of {pos.width} ({self.context})",
                    lo,
                    hi,
                    pos.width,
                )
            )
        elif name == "RecordRevealed":
            party = int(a["party"])
            revealed = (_hex(a["record"]), _hex(a["header"]), _hex(a["merkle"]))
            self.committed(at, party, hashlib.sha256(revealed[0]).digest(), "record")
            self.records[party] = revealed
            self.nodes[party] = revealed[2]
            honest_record = (
                self.p.record(pos.step, pos.op).encode(),
                self.p.output_header(pos.step, pos.op),
                self.p.output_merkle(pos.step, pos.op),
            )
            parts = [
                k for k, (x, y) in enumerate(zip(revealed, honest_record, strict=True)) if x != y
            ]
            if "op" not in audit.disputed:
                record = self.p.record(pos.step, pos.op)
                audit.disputed.update(
                    step=pos.step,
                    global_step=(
                        self.p.first_step + pos.step if pos.step < self.p.step_count else None
                    ),
                    op=pos.op,
                    op_name=record.op.name.lower(),
                    definition=asdict(op_definition(record.op)),
                )
            what = ("its record", "its output's shape", "its output's Merkle root")
            detail = "the replay's" if not parts else f"{what[parts[0]]} is not the replay's"
            self.reveal(i, party, f"record of op {pos.op}", not parts, detail)
        elif name == "LeafRevealed":
            party = int(a["party"])
            leaf = _hex(a["leaf"])
            self.committed(at, party, hashlib.sha256(leaf).digest(), "leaf")
            self.leaves[party] = leaf
            honest_leaf = self.p.leaf(pos.step, pos.op, pos.leaf)
            detail = f"leaf {pos.leaf}" + ("" if leaf == honest_leaf else " is not the replay's")
            self.reveal(i, party, "leaf", leaf == honest_leaf, detail)
        elif name == "ElementFound":
            self._element_found(at, a)
        elif name == "TermsPosted":
            party = int(a["party"])
            values = [int(v) for v in a["values"]]
            points = term_points(int(a["lo"]), int(a["hi"]), self.bits)
            honest_values = partials_at(self.p.partials(pos.step, pos.op, pos.element), points)
            wrong = [k for k in range(len(values)) if values[k] != honest_values[k]]
            detail = (
                f"P({points[wrong[0]]}) = {_bits(values[wrong[0]])}, the replay's is "
                f"{_bits(honest_values[wrong[0]])}"
                if wrong
                else f"{len(values)} partial results in ({a['lo']}, {a['hi']})"
            )
            self.reveal(i, party, "partial results", not wrong, detail)
            self.round_values[party] = values
        elif name == "TermsNarrowed":
            self._terms_narrowed(at, a)
        elif name == "OneStepEvaluated":
            self._one_step(at, a, move)
        elif name == "ProgramProved":
            self._program_proved(at, a)
        elif name == "SourceProved":
            self._source_proved(at, a)
        elif name == "GameResolved":
            self._resolved(at, a, now)
        elif name == "BondsWithdrawn":
            winner = to_checksum_address(a["winner"])
            audit.add(
                "payout",
                f"{at}: the winner takes the game's bonds",
                f"{winner} took {a['amount']} wei",
                self._payout_text(),
                self._payout_ok(winner, int(a["amount"])),
            )
        elif name == "BondsSwept":
            audit.add(
                "payout",
                f"{at}: the bonds of a game both lost go to the jackpot",
                f"{a['amount']} wei swept",
                self._payout_text(),
                self.expected == Ruling.BOTH_LOSE and int(a["amount"]) == self._bonds(),
            )

    def _op_name(self, step: int, op: int) -> str:
        try:
            return self.p.record(step, op).op.name.lower()
        except VeritrainError:
            return "?"

    def _bonds(self) -> int:
        return sum(self.moves) * self.bond

    def _payout_text(self) -> str:
        if self.expected is None:
            return "the game has not ended"
        if self.expected == Ruling.BOTH_LOSE:
            return f"{self._bonds()} wei to the jackpot"
        winner = self.parties[0 if self.expected == Ruling.DEFENDER_WINS else 1]
        return f"{winner} takes {self._bonds()} wei"

    def _payout_ok(self, winner: str, amount: int) -> bool:
        if self.expected not in (Ruling.DEFENDER_WINS, Ruling.CHALLENGER_WINS):
            return False
        expected = self.parties[0 if self.expected == Ruling.DEFENDER_WINS else 1]
        return winner == expected and amount == self._bonds()

    def _element_found(self, at: str, a: Mapping[str, Any]) -> None:
        pos = self.pos
        mine, theirs = self.leaves.get(0, b""), self.leaves.get(1, b"")
        words0 = np.frombuffer(mine, dtype="<u4") if len(mine) == 1024 else np.zeros(0, "<u4")
        words1 = np.frombuffer(theirs, dtype="<u4") if len(theirs) == 1024 else np.zeros(0, "<u4")
        differ = [k for k in range(min(len(words0), len(words1))) if words0[k] != words1[k]]
        got = (int(a["element"]), int(a["defenderValue"]), int(a["challengerValue"]))
        if differ:
            k = differ[0]
            derived = (pos.leaf * LEAF_VALUES + k, int(words0[k]), int(words1[k]))
        else:
            derived = (-1, 0, 0)
        self.audit.add(
            "game",
            f"{at}: the disputed element and each party's value, from the two leaves",
            f"element {got[0]}: defender {_bits(got[1])}, challenger {_bits(got[2])}",
            f"element {derived[0]}: defender {_bits(derived[1])}, challenger {_bits(derived[2])}",
            got == derived,
        )
        entry = self.p.entry(pos.step, pos.op)
        terms = entry.terms
        self.audit.add(
            "game",
            f"{at}: the element's term count is the program's",
            a["terms"],
            terms,
            int(a["terms"]) == terms,
        )
        pos.element, pos.values, pos.terms = got[0], (got[1], got[2]), int(a["terms"])
        pos.lo, pos.hi, pos.acc_lo, pos.element_found = 0, int(a["terms"]), 0, True
        numel = header_numel(entry.header)
        honest = self.p.value(pos.step, pos.op, pos.element) if pos.element < numel else 0
        self.audit.disputed.update(
            element=pos.element,
            terms=pos.terms,
            defender=_bits(got[1]),
            challenger=_bits(got[2]),
            replay=_bits(honest),
        )

    def _terms_narrowed(self, at: str, a: Mapping[str, Any]) -> None:
        pos = self.pos
        values = [self.round_values.get(0, []), self.round_values.get(1, [])]
        points = term_points(pos.lo, pos.hi, self.bits)
        count = len(points)
        i = 0
        while i < count and i < len(values[0]) and i < len(values[1]):
            if values[0][i] != values[1][i]:
                break
            i += 1
        lo, hi, acc, v = pos.lo, pos.hi, pos.acc_lo, pos.values
        if i > 0:
            lo, acc = points[i - 1], values[0][i - 1]
        if i < count:
            hi = points[i]
            v = (values[0][i], values[1][i])
        got = (
            int(a["lo"]),
            int(a["hi"]),
            int(a["accLo"]),
            int(a["defenderValue"]),
            int(a["challengerValue"]),
        )
        derived = (lo, hi, acc, v[0], v[1])
        self.audit.add(
            "game",
            f"{at}: the interval of partial results, from the two parties' values",
            f"({got[0]}, {got[1]}] from {_bits(got[2])}: {_bits(got[3])} / {_bits(got[4])}",
            f"({lo}, {hi}] from {_bits(acc)}: {_bits(v[0])} / {_bits(v[1])}",
            got == derived,
        )
        self.audit.path.append(
            PathStep(
                "terms",
                f"terms ({got[0]}, {got[1]}] of {pos.terms}, P({got[0]}) agreed",
                got[0],
                got[1],
                pos.terms,
            )
        )
        pos.lo, pos.hi, pos.acc_lo, pos.values = got[0], got[1], got[2], (got[3], got[4])
        self.round_values = {}

    def _one_step(self, at: str, a: Mapping[str, Any], move: Mapping[str, Any]) -> None:
        pos = self.pos
        args = move["args"]
        prefix = _hex(args[1])
        witness = args[2]
        header = self.records.get(0, (b"", b"", b""))[1] or self.p.output_header(pos.step, pos.op)
        try:
            shape = _shape(header)
            defined, value, note = one_step_from_witness(
                prefix, witness, shape, pos.element, pos.lo, pos.hi, pos.acc_lo
            )
        except (ValueError, ExactError) as exc:
            defined, value, note = False, None, str(exc)
        got_defined, got_value = bool(a["defined"]), int(a["value"])
        self.one_step = (defined, value)
        self.audit.add(
            "one step",
            f"{at}: the one step re-executed from the oneStep transaction's witness",
            _bits(got_value) if got_defined else "undefined",
            (_bits(value) if defined else "undefined") + (f" ({note})" if note else ""),
            (got_defined, got_value if got_defined else None) == (defined, value),
        )
        # What the replay's own tensors give for the same stretch.
        record = self.p.record(pos.step, pos.op)
        if prefix == record.encode()[:-32]:
            t = self.p.tensors(pos.step, pos.op)
            try:
                if record.op in REDUCTIONS:
                    own = continue_partials(
                        record.op,
                        record.attributes,
                        t.inputs,
                        t.output.shape,
                        pos.element,
                        pos.lo,
                        pos.hi,
                        pos.acc_lo,
                    )
                else:
                    own = self.p.value(pos.step, pos.op, pos.element)
                self.audit.disputed["one_step_replay"] = _bits(own)
            except ExactError:
                pass
        self.audit.disputed["one_step"] = _bits(got_value) if got_defined else "undefined"

    def _program_proved(self, at: str, a: Mapping[str, Any]) -> None:
        pos = self.pos
        accused = int(a["accused"])
        expected = self.p.expected_prefix(pos.step, pos.op) + self.p.entry(pos.step, pos.op).header
        record, header, _ = self.records.get(accused, (b"", b"", b""))
        try:
            theirs = record_prefix(OpRecord.decode(record)) + header
        except ExactError:
            theirs = b""
        self.audit.add(
            "ruling",
            f"{at}: the accused's record is not the one the program prescribes",
            f"{Party(accused).name.lower()} accused",
            "not the program's" if theirs != expected else "the program's after all",
            theirs != expected,
        )
        self.accused = accused

    def _source_proved(self, at: str, a: Mapping[str, Any]) -> None:
        pos = self.pos
        accused, slot = int(a["accused"]), int(a["slot"])
        truth = self.p.source_root(pos.step, pos.op, slot) if pos.phase == Phase.INPUT else None
        record = self.records.get(accused, (b"", b"", b""))[0]
        wrong = True
        if truth is not None and record:
            try:
                wrong = OpRecord.decode(record).inputs[slot] != truth
            except (ExactError, IndexError):
                wrong = True
        self.audit.add(
            "ruling",
            f"{at}: the accused's input {slot} is not from its source",
            f"{Party(accused).name.lower()} accused",
            "its input is not the source's" if wrong else "its input IS the source's",
            wrong,
        )
        self.accused = accused

    def _resolved(self, at: str, a: Mapping[str, Any], now: int) -> None:
        reason = Reason(int(a["reason"]))
        ruling = Ruling(int(a["ruling"]))
        expected: Ruling | None = None
        why = ""
        if reason == Reason.CLOCK:
            assert self.clocks is not None
            out = [self.clocks.expired(p, now) for p in (0, 1)]
            expected = _loser(*out) if any(out) else None
            why = "clocks: " + ", ".join(
                f"{Party(p).name.lower()} {'ran out' if out[p] else 'in time'}" for p in (0, 1)
            )
        elif reason == Reason.ONE_STEP and self.one_step is not None:
            defined, value = self.one_step
            expected = Ruling.BOTH_LOSE
            if defined and value == self.pos.values[0]:
                expected = Ruling.DEFENDER_WINS
            elif defined and value == self.pos.values[1]:
                expected = Ruling.CHALLENGER_WINS
            v = self.pos.values
            why = f"one step {_bits(value)}; defender {_bits(v[0])}, challenger {_bits(v[1])}"
        elif reason in (Reason.PROGRAM, Reason.SOURCE) and self.accused is not None:
            expected = Ruling.CHALLENGER_WINS if self.accused == 0 else Ruling.DEFENDER_WINS
            why = f"{Party(self.accused).name.lower()} proved wrong"
        elif reason == Reason.PROGRAM:
            # Both records agree with each other and not with the program (at the leaf).
            expected = Ruling.BOTH_LOSE
            why = "both records are not the program's"
        elif reason == Reason.PADDING:
            v = self.pos.values
            element = int(self.audit.disputed.get("element", 0)) if self.audit.disputed else 0
            numel = header_numel(self.p.entry(self.pos.step, self.pos.op).header)
            expected = _loser(v[0] != 0, v[1] != 0) if element >= numel else None
            why = "a leaf past the tensor's end that is not zero"
        self.expected, self.expected_reason = expected, reason
        shown = f"{ruling.name} ({reason.name})"
        self.audit.add(
            "ruling",
            f"{at}: the ruling follows from the game's rules on the moves",
            shown,
            f"{expected.name if expected else 'no ruling'} ({why})",
            expected == ruling,
        )
        document = self.document
        self.audit.add(
            "ruling",
            "the transcript's ruling is the chain's last word on the game",
            f"{document['ruling']} ({document['reason']})",
            shown,
            (RULINGS.get(document["ruling"]), REASONS.get(document["reason"])) == (ruling, reason),
        )
        self.audit.add(
            "payout",
            f"{at}: the bonds the game holds",
            f"{a['bonds']} wei",
            f"{self._bonds()} wei ({self.moves[0]} + {self.moves[1]} bonded moves)",
            int(a["bonds"]) == self._bonds(),
        )
        # A party whose trace is the replay's loses only by its clock.
        for p in (0, 1):
            name = Party(p).name.lower()
            if not self.audit.honest.get(name):
                continue
            lost = ruling in (
                Ruling.BOTH_LOSE,
                Ruling.CHALLENGER_WINS if p == 0 else Ruling.DEFENDER_WINS,
            )
            self.audit.add(
                "ruling",
                f"the {name}, whose trace is the replay's, loses only by its clock",
                f"{ruling.name} ({reason.name})",
                "honest party lost" if lost else "honest party won",
                not lost or reason == Reason.CLOCK,
            )


def _curve(
    provider: ReplayProvider, inputs: Inputs, progress: Progress | None
) -> list[dict[str, Any]]:
    """The probe loss (screening's fixed batch) of the state after each step of the replay, and
    of the claimed end state."""
    from agents.learning.backends.exact import ExactBackend
    from agents.learning.screening import Prober

    prober = Prober(inputs.task)
    session = ExactBackend().start(inputs.task, inputs.start)
    batches = np.array(inputs.task.segment_batches(provider.segment), dtype=np.int64)
    points = [{"step": provider.first_step, "replay": prober.statistics(inputs.start).probe_loss}]
    for t in range(len(batches)):
        session.run(batches[t : t + 1])
        loss = prober.statistics(session.state()).probe_loss
        points.append({"step": provider.first_step + t + 1, "replay": loss})
        if progress is not None:
            progress("training curve", t + 1, len(batches))
    points[-1]["claimed"] = prober.statistics(inputs.claimed).probe_loss
    return points


def replay_game(
    document: Any,
    store: ArtifactStore,
    *,
    cache: Path | None = None,
    progress: Progress | None = None,
    curve: bool = True,
) -> GameAudit:
    """Replay the game of transcript ``document`` (see the module docstring)."""
    document = check_shape(document)
    try:
        game = ContractInterface("PinpointGame", str(document["game"]), document["abi"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditInputError(f"transcript: abi or game is malformed: {exc}") from None
    step = 0

    def stage(name: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(name, step, 5)

    stage("checking the signed moves")
    _check_moves(document, game)
    created_events = [
        e["args"] for m in document["moves"] for e in m["events"] if e["event"] == "GameCreated"
    ]
    if len(created_events) != 1:
        raise AuditInputError("transcript: the game's creation (GameCreated) is missing")
    created = created_events[0]
    stage("reading the artifacts")
    inputs = _read_inputs(document, created, store)
    segment = int(created["spec"][2])
    stage("replaying the segment")
    provider = ReplayProvider(
        inputs.task, inputs.program, segment, inputs.start, inputs.claimed, cache=cache
    )
    audit = GameAudit(document)
    audit.segment = segment
    audit.steps = (provider.first_step, provider.first_step + provider.step_count - 1)
    traces = (_hex(created["spec"][5]), _hex(created["spec"][6]))
    root = provider.trace_root
    audit.parties = {
        "defender": to_checksum_address(created["defender"]),
        "challenger": to_checksum_address(created["challenger"]),
    }
    audit.honest = {"defender": traces[0] == root, "challenger": traces[1] == root}
    if not any(audit.honest.values()):
        audit.notes.append("neither party's trace root is the replay's: both lied")
    stage("following the game")
    follower = _Follower(audit, provider, inputs, document)
    follower.run()
    if follower.expected is not None:
        audit.expected = (follower.expected.name, (follower.expected_reason or Reason.NONE).name)
    elif document["ruling"] != "NONE":
        audit.add("ruling", "the game ended", document["ruling"], "no GameResolved event", False)
    stage("the training curve")
    if curve:
        audit.curve = _curve(provider, inputs, progress)
    return audit
