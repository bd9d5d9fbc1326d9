"""A pinpoint game's self-contained transcript: what ``veritrain dispute replay`` needs, no chain.

``export_game`` reads a game from the chain and writes one JSON document
(``veritrain-dispute/1``):

- the game: chain id, contract address, game id, and the parameters that rule it
  (``dissectionBits``, the one step's ``maxTerms``, the bond, the clock and its extension);
- ``artifacts``: the CIDs of what a replay reads from the store (the task's spec, the
  segment's start state and the claimed end state), each with the root the game commits to;
- ``abi``: the game contract's functions (a selector commits to its function's types);
- ``moves``: every transaction that made the game emit an event, in chain order, each with
  its block, time, sender, recipient, function and decoded arguments (for a call to the game
  itself; a pool that opened the game for a challenge is named as the recipient), the
  **signed transaction's raw bytes**, and the events it emitted about the game;
- the chain's ruling and reason.

``load_transcript`` reads one back and checks its shape (a malformed document is
``AuditInputError``, exit 2). Whether it is the game's true story is the replay's business
(``agents.audit.game``): the raw transaction of each move must hash to its hash, recover to
its sender and decode to its arguments, so no move can be edited without its party's key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address

from agents.audit.errors import AuditInputError
from agents.chain.abi import ContractInterface, DecodedLog, abi_type, plain
from agents.chain.client import ChainClient
from agents.chain.errors import ChainError
from agents.dispute.driver import GameLog
from agents.errors import VeritrainError
from agents.learning.proof import MAX_MANIFEST_BYTES, parse_manifest, read_artifact
from agents.store import ArtifactStore

FORMAT = "veritrain-dispute/1"
ARTIFACTS = ("spec", "start", "claimed")
MAX_TERMS = [
    {
        "type": "function",
        "name": "maxTerms",
        "inputs": [],
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "pure",
    }
]


@dataclass(frozen=True)
class Artifacts:
    """The CIDs a replay of a game reads: the task's spec, the segment's start state and the
    claimed end state."""

    spec: str
    start: str
    claimed: str


def artifacts_of_proof(store: ArtifactStore, proof_cid: str, segment: int) -> Artifacts:
    """The artifacts of segment ``segment`` of a proof of learning: its spec, and checkpoints
    ``segment`` and ``segment + 1`` (the start, and the solver's claimed end)."""
    what = f"proof {proof_cid}"
    try:
        data = read_artifact(store, proof_cid, MAX_MANIFEST_BYTES, what)
        manifest = parse_manifest(data, what, limit=MAX_MANIFEST_BYTES)
    except VeritrainError as exc:
        raise AuditInputError(f"{what}: {exc}") from None
    if not 0 <= segment < len(manifest.checkpoints) - 1:
        raise AuditInputError(
            f"{what} has {len(manifest.checkpoints)} checkpoints: no segment {segment}"
        )
    return Artifacts(
        manifest.spec, manifest.checkpoints[segment].cid, manifest.checkpoints[segment + 1].cid
    )


def decode_call(interface: ContractInterface, data: bytes) -> tuple[str, list[Any]]:
    """The function and plain arguments of calldata ``data`` to ``interface``'s contract."""
    for entry in interface.abi:
        if entry.get("type") != "function":
            continue
        if function_abi_to_4byte_selector(dict(entry)) != data[:4]:  # type: ignore[arg-type]
            continue
        types = [abi_type(p) for p in entry.get("inputs", [])]
        try:
            values = abi_decode(types, data[4:])
        except Exception as exc:  # eth_abi raises several kinds for bad calldata
            raise ChainError(f"calldata of {entry['name']} does not decode: {exc}") from None
        return str(entry["name"]), [plain(v, t) for v, t in zip(values, types, strict=True)]
    raise ChainError(f"no function of {interface.name} has selector 0x{data[:4].hex()}")


def _event(e: DecodedLog) -> dict[str, Any]:
    return {"event": e.name, "log_index": e.log_index, "args": e.args}


def _view(client: ChainClient, contract: ContractInterface, name: str, *args: Any) -> Any:
    raw = client.call(contract.address, contract.encode_call(name, args))
    return contract.decode_output(name, raw)


def _raw_transaction(client: ChainClient, tx_hash: str) -> str:
    raw = client.rpc.request("eth_getRawTransactionByHash", [tx_hash])
    if not raw:
        raise AuditInputError(f"the node does not give the raw transaction {tx_hash}")
    return str(raw)


def export_game(
    client: ChainClient,
    game: ContractInterface,
    game_id: int,
    artifacts: Artifacts,
    *,
    from_block: int = 0,
) -> dict[str, Any]:
    """The transcript of game ``game_id`` (see the module docstring)."""
    log = GameLog.read(client, game, game_id, from_block)
    if not any(e.name == "GameCreated" for e in log.events):
        raise AuditInputError(f"game {game_id} has no GameCreated event on {game.address}")
    one_step = ContractInterface("OneStep", str(_view(client, game, "oneStepContract")), MAX_TERMS)
    try:
        max_terms: int | None = int(_view(client, one_step, "maxTerms"))
    except ChainError:
        max_terms = None  # a stand-in one step without the view
    by_tx: dict[str, list[DecodedLog]] = {}
    for e in log.events:
        by_tx.setdefault(e.tx_hash, []).append(e)
    moves = []
    for tx_hash, events in by_tx.items():
        tx = client.rpc.request("eth_getTransactionByHash", [tx_hash])
        raw = _raw_transaction(client, tx_hash)
        to = to_checksum_address(str(tx["to"])) if tx.get("to") else ""
        if to == game.address:
            function, args = decode_call(game, bytes.fromhex(str(tx["input"])[2:]))
        else:
            # A call into another contract that reached the game (a pool opening a game for a
            # challenge): signed all the same, its calldata is that contract's.
            function, args = "", []
        block = events[0].block_number
        moves.append(
            {
                "tx": tx_hash,
                "block": block,
                "time": client.block(block).timestamp,
                "from": str(tx["from"]),
                "to": to,
                "function": function,
                "args": args,
                "raw": raw,
                "events": [_event(e) for e in events],
            }
        )
    created = next(e for e in log.events if e.name == "GameCreated")
    spec = created.args["spec"]
    state = log.state
    return {
        "format": FORMAT,
        "chain_id": client.chain_id(),
        "game": game.address,
        "game_id": game_id,
        "params": {
            "dissection_bits": int(_view(client, game, "dissectionBits")),
            "bond": int(_view(client, game, "requiredBond")),
            "max_terms": max_terms,
            "clock": int(_view(client, game, "clock")),
            "extension": int(_view(client, game, "extension")),
        },
        "artifacts": {
            "spec": {"cid": artifacts.spec, "program": str(spec[0])},
            "start": {"cid": artifacts.start, "state_root": str(spec[3])},
            "claimed": {"cid": artifacts.claimed, "state_root": str(spec[4])},
        },
        "ruling": state.ruling.name,
        "reason": state.reason.name,
        "moves": moves,
        # The game's functions: a selector commits to its function's name and types, so this
        # is all a replay needs to decode the signed calldata, and it cannot misread it.
        "abi": [dict(entry) for entry in game.abi if entry.get("type") == "function"],
    }


def write_transcript(document: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _need(document: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = document.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise AuditInputError(f"transcript: {where}{key} is missing or not a {_kind(kind)}")
    return value


def _kind(kind: type | tuple[type, ...]) -> str:
    kinds: Iterable[type] = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def check_shape(document: Any) -> dict[str, Any]:
    """``document`` as a transcript, its shape checked (``AuditInputError`` naming the field)."""
    if not isinstance(document, dict):
        raise AuditInputError("transcript: not a JSON object")
    if document.get("format") != FORMAT:
        raise AuditInputError(
            f"transcript: format {str(document.get('format'))[:40]!r}, expected {FORMAT!r}"
        )
    _need(document, "chain_id", int, "")
    _need(document, "game", str, "")
    _need(document, "game_id", int, "")
    _need(document, "ruling", str, "")
    _need(document, "reason", str, "")
    params = _need(document, "params", dict, "")
    for key in ("dissection_bits", "bond", "clock", "extension"):
        _need(params, key, int, "params.")
    if params.get("max_terms") is not None:
        _need(params, "max_terms", int, "params.")
    artifacts = _need(document, "artifacts", dict, "")
    for name in ARTIFACTS:
        entry = _need(artifacts, name, dict, "artifacts.")
        _need(entry, "cid", str, f"artifacts.{name}.")
    abi = _need(document, "abi", list, "")
    if not all(isinstance(entry, dict) for entry in abi):
        raise AuditInputError("transcript: abi holds something other than ABI entries")
    moves = _need(document, "moves", list, "")
    if not moves:
        raise AuditInputError("transcript: no moves")
    for i, move in enumerate(moves):
        where = f"moves[{i}]."
        if not isinstance(move, dict):
            raise AuditInputError(f"transcript: moves[{i}] is not an object")
        for key in ("tx", "from", "to", "function", "raw"):
            _need(move, key, str, where)
        for key in ("block", "time"):
            _need(move, key, int, where)
        _need(move, "args", list, where)
        events = _need(move, "events", list, where)
        for j, event in enumerate(events):
            if not isinstance(event, dict):
                raise AuditInputError(f"transcript: {where}events[{j}] is not an object")
            _need(event, "event", str, f"{where}events[{j}].")
            _need(event, "args", dict, f"{where}events[{j}].")
    return document


def load_transcript(path: Path) -> dict[str, Any]:
    """The transcript at ``path``, its shape checked."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditInputError(f"transcript {path}: {exc}") from None
    return check_shape(document)
