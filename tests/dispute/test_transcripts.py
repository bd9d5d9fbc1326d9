"""Game transcripts: real games on anvil between an honest and a lying party (real segments of
the example models, decided by the arbiter's one step), exported, and replayed with no chain.

The replay agrees with the chain on every game (exit 0); a transcript whose recorded ruling
is edited disagrees (exit 1, naming the ruling); a transcript with an edited move, event value
or artifact CID is refused and the field is named (exit 2); an artifact the store lacks is
unusable (exit 2). The command line does the same with ``veritrain dispute export/replay``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.arbiter.elements import MAX_TERMS
from agents.audit.errors import AuditInputError
from agents.audit.game import GameAudit, TamperedTranscriptError, replay_game
from agents.audit.game_page import render_game
from agents.audit.transcript import Artifacts, export_game
from agents.chain.abi import ContractInterface
from agents.chain.client import ChainClient
from agents.dispute.game import Party, Ruling
from agents.dispute.replay import Fault, fault_choices
from agents.learning.proof import encode_checkpoint
from agents.store import ArtifactStore, open_store
from scripts.arena import Arena, Player, open_game, trace_cache
from tests.command_line import veritrain
from tests.dispute import segments

MODEL = "mlp"
SEGMENT = 1


@functools.cache
def _cache() -> Path:
    """The replays' cache, shared by the module's games and removed when the run ends."""
    return trace_cache("transcript-traces-")


def _store(root: Path) -> tuple[ArtifactStore, Artifacts]:
    """A store holding the spec, the segment's start state and its claimed end state."""
    store = open_store(root)
    task = segments.small_task(MODEL)
    states = segments.checkpoints(MODEL)
    spec = store.put_bytes(task.spec.canonical_bytes())
    start = store.put_bytes(encode_checkpoint(states[SEGMENT]))
    claimed = store.put_bytes(encode_checkpoint(states[SEGMENT + 1]))
    return store, Artifacts(spec, start, claimed)


def _play(arena: Arena, deployed: Any, liar: Party, fault: Fault) -> int:
    honest = segments.provider(MODEL, SEGMENT, _cache())
    lying = segments.provider(MODEL, SEGMENT, _cache(), fault)
    assert lying.trace_root != honest.trace_root
    traces = {liar: lying, liar.other: honest}
    accounts = deployed.accounts
    game_id, _ = open_game(
        deployed.arbitrated,
        honest.program,
        segments.checkpoint_roots(MODEL),
        SEGMENT,
        traces[Party.DEFENDER].trace_root,
        traces[Party.CHALLENGER].trace_root,
        accounts[1],
        accounts[2],
    )
    outcome = arena.play(
        game_id,
        Player(Party.DEFENDER, accounts[1], traces[Party.DEFENDER]),
        Player(Party.CHALLENGER, accounts[2], traces[Party.CHALLENGER]),
        honest,
    )
    honest_wins = Ruling.CHALLENGER_WINS if liar == Party.DEFENDER else Ruling.DEFENDER_WINS
    assert outcome.state.ruling == honest_wins
    return game_id


def _export(devnet: Any, deployed: Any, game_id: int, artifacts: Artifacts) -> dict[str, Any]:
    game = deployed.arbitrated
    interface = ContractInterface("PinpointGame", game.address, game.abi)
    return export_game(ChainClient(devnet.url), interface, game_id, artifacts)


@pytest.fixture(scope="module")
def played(
    devnet: Any, deployed_once: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Two games on the devnet, exported: a lying defender (a flipped partial result of a
    reduction, so the game goes through every level) and a lying challenger (a flipped
    element), with the store both need. The chain is put back afterwards."""
    import random

    from brownie import chain

    chain.snapshot()

    store, artifacts = _store(tmp_path_factory.mktemp("store"))
    arena = Arena(deployed_once.arbitrated, None, deployed_once.accounts[9], random.Random(3))
    honest = segments.provider(MODEL, SEGMENT, _cache())
    rng = random.Random(14)
    term = fault_choices(honest, "term", rng)
    value = fault_choices(honest, "value", rng)
    assert term is not None and value is not None
    out = {"store": store, "artifacts": artifacts, "faults": {"term": term, "value": value}}
    for name, liar, fault in (
        ("term", Party.DEFENDER, term),
        ("value", Party.CHALLENGER, value),
    ):
        game_id = _play(arena, deployed_once, liar, fault)
        out[name] = _export(devnet, deployed_once, game_id, artifacts)
    yield out
    chain.revert()


def _replay(document: dict[str, Any], store: ArtifactStore) -> GameAudit:
    return replay_game(document, store, cache=_cache(), curve=False)


@pytest.mark.parametrize("name", ["term", "value"])
def test_replay_agrees_with_the_chain(played: dict[str, Any], name: str) -> None:
    document = played[name]
    audit = _replay(document, played["store"])
    assert audit.exit_code == 0, [f for f in audit.findings if not f.holds]
    liar = "defender" if name == "term" else "challenger"
    assert audit.honest == {liar: False, ("challenger" if liar == "defender" else "defender"): True}
    assert liar in audit.first_lie and len(audit.first_lie) == 1
    assert audit.expected is not None and audit.expected[0] == document["ruling"]
    levels = list(dict.fromkeys(p.level for p in audit.path))
    assert levels[:3] == ["steps", "ops", "record"], levels
    # A value lie on a reduction longer than the one step's stretch is bisected to its terms too.
    fault = played["faults"][name]
    bisected = segments.provider(MODEL, SEGMENT, _cache()).entry(fault.step, fault.op).terms
    long = name == "term" or bisected > MAX_TERMS
    assert levels[-2:] == ["terms" if long else "leaf", "one step"], levels
    # Every narrowing was derived again, and the one step re-executed.
    areas = {f.area for f in audit.findings}
    assert {"game", "one step", "ruling", "payout"} <= areas


def test_an_edited_ruling_disagrees(played: dict[str, Any]) -> None:
    document = copy.deepcopy(played["value"])
    document["ruling"] = (
        "CHALLENGER_WINS" if document["ruling"] == "DEFENDER_WINS" else "DEFENDER_WINS"
    )
    audit = _replay(document, played["store"])
    assert audit.exit_code == 1
    assert [f.claim for f in audit.differences()] == [
        "the transcript's ruling is the chain's last word on the game"
    ]


def test_an_edited_resolution_disagrees(played: dict[str, Any]) -> None:
    document = copy.deepcopy(played["value"])
    for move in document["moves"]:
        for event in move["events"]:
            if event["event"] == "GameResolved":
                event["args"]["ruling"] = int(Ruling.BOTH_LOSE)
    audit = _replay(document, played["store"])
    assert audit.exit_code == 1
    assert any("GameResolved" in f.claim for f in audit.differences())


def _first(document: dict[str, Any], function: str) -> tuple[int, dict[str, Any]]:
    return next((i, m) for i, m in enumerate(document["moves"]) if m["function"] == function)


def _flip_hex(value: str) -> str:
    last = int(value[-1], 16) ^ 1
    return value[:-1] + f"{last:x}"


def test_edited_moves_are_named(played: dict[str, Any]) -> None:
    store = played["store"]
    base = played["term"]
    # A dissection's node.
    document = copy.deepcopy(base)
    i, move = _first(document, "dissect")
    move["args"][1][2] = _flip_hex(move["args"][1][2])
    with pytest.raises(TamperedTranscriptError, match=rf"moves\[{i}\]\.args\[1\]\[2\]"):
        _replay(document, store)
    # A partial result, in the move and its event alike: the signature still tells.
    document = copy.deepcopy(base)
    i, move = _first(document, "bisectTerms")
    move["args"][1][0] ^= 1
    move["events"][0]["args"]["values"][0] ^= 1
    with pytest.raises(TamperedTranscriptError, match=rf"moves\[{i}\]\.args\[1\]\[0\]"):
        _replay(document, store)
    # The event of a move, alone.
    document = copy.deepcopy(base)
    i, move = _first(document, "revealLeaf")
    j = next(k for k, e in enumerate(move["events"]) if e["event"] == "LeafRevealed")
    leaf = move["events"][j]["args"]["leaf"]
    move["events"][j]["args"]["leaf"] = _flip_hex(leaf)
    with pytest.raises(TamperedTranscriptError, match=rf"moves\[{i}\]\.events\[{j}\]\.args\.leaf"):
        _replay(document, store)
    # The signed transaction itself: it no longer hashes to the move's hash.
    document = copy.deepcopy(base)
    i, move = _first(document, "revealRecord")
    move["raw"] = move["raw"][:-6] + _flip_hex(move["raw"][-6:])
    with pytest.raises(AuditInputError, match=rf"moves\[{i}\]\.raw"):
        _replay(document, store)
    # Who sent it.
    document = copy.deepcopy(base)
    i, move = _first(document, "dissect")
    move["from"] = (
        document["moves"][0]["from"]
        if move["from"] != document["moves"][0]["from"]
        else "0x" + "11" * 20
    )
    with pytest.raises(TamperedTranscriptError, match=rf"moves\[{i}\]\.from"):
        _replay(document, store)


def test_an_edited_derived_value_is_named(played: dict[str, Any]) -> None:
    document = copy.deepcopy(played["term"])
    for i, move in enumerate(document["moves"]):
        for j, event in enumerate(move["events"]):
            if event["event"] == "ElementFound":
                event["args"]["defenderValue"] ^= 1 << 4
                where = f"moves[{i}].events[{j}] ElementFound"
    audit = _replay(document, played["store"])
    assert audit.exit_code == 1
    assert any(f.claim.startswith(where) for f in audit.differences())


def test_edited_artifacts_are_named(played: dict[str, Any]) -> None:
    store, artifacts = played["store"], played["artifacts"]
    document = copy.deepcopy(played["value"])
    document["artifacts"]["start"]["cid"] = artifacts.claimed
    with pytest.raises(TamperedTranscriptError, match=r"artifacts\.start\.cid"):
        _replay(document, store)
    document = copy.deepcopy(played["value"])
    document["artifacts"]["claimed"]["state_root"] = "0x" + "00" * 32
    with pytest.raises(TamperedTranscriptError, match=r"artifacts\.claimed\.state_root"):
        _replay(document, store)
    document = copy.deepcopy(played["value"])
    document["artifacts"]["spec"]["cid"] = artifacts.start
    with pytest.raises(AuditInputError, match=r"artifacts\.spec\.cid"):
        _replay(document, store)


def test_a_missing_artifact_is_unusable(played: dict[str, Any], tmp_path: Path) -> None:
    empty = open_store(tmp_path / "empty")
    with pytest.raises(AuditInputError, match=r"artifacts\.spec\.cid"):
        _replay(played["value"], empty)


def test_malformed_transcripts_are_unusable(played: dict[str, Any]) -> None:
    edits: tuple[tuple[Callable[[dict[str, Any]], object], str], ...] = (
        (lambda d: d.pop("moves"), "moves"),
        (lambda d: d.update(format="other/1"), "format"),
        (lambda d: d["moves"][1].update(block="7"), r"moves\[1\]\.block"),
        (lambda d: d["artifacts"].pop("claimed"), r"artifacts\.claimed"),
    )
    for edit, field in edits:
        document = copy.deepcopy(played["value"])
        edit(document)
        with pytest.raises(AuditInputError, match=field):
            _replay(document, played["store"])


def test_command_line(
    played: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_root = tmp_path / "store"
    _store(store_root)
    path = tmp_path / "transcript.json"
    path.write_text(json.dumps(played["term"]))
    page = tmp_path / "game.html"
    replay = ["dispute", "replay", str(path), "--store", str(store_root), "--quiet"]
    code, out, err = veritrain(
        capsys, *replay, "--cache", str(_cache()), "--json", "--html", str(page)
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["holds"] and report["exit_code"] == 0 and len(report["curve"]) == 3
    assert page.is_file() and "<script" not in page.read_text()
    edited = copy.deepcopy(played["term"])
    edited["ruling"] = "BOTH_LOSE"
    path.write_text(json.dumps(edited))
    code, out, err = veritrain(capsys, *replay, "--cache", str(_cache()))
    assert code == 1, out + err
    assert "DIFFERS" in out and "the transcript's ruling" in out
    path.write_text("{not json")
    code, _, err = veritrain(capsys, *replay)
    assert code == 2 and "transcript" in err


@pytest.fixture(scope="module")
def page_of_game(played: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page of the lying defender's game (a reduction's partial result), with its curve."""
    audit = replay_game(played["term"], played["store"], cache=_cache())
    assert audit.holds and len(audit.curve) == 1 + segments.INTERVAL
    page = tmp_path_factory.mktemp("page") / "game.html"
    page.write_text(render_game(audit), encoding="utf-8")
    return page


def test_the_game_page_in_a_browser(page_of_game: Path, tmp_path: Path) -> None:
    """At a phone's width the banner is the answer's colour; the page draws a bar per
    narrowing, a point per step of the curve, the op's definition from docs/exact.md, both
    parties' values and every revealed move."""
    from agents.audit.page import DIFFERS_COLOUR, HOLDS_COLOUR
    from tests.audit.browser import dump_dom, screenshot, share_of

    pixels = screenshot(page_of_game, tmp_path / "game.png", 390, 844)
    assert pixels.shape[1] == 390
    assert share_of(pixels[:40], HOLDS_COLOUR) > 0.8 and share_of(pixels[:40], DIFFERS_COLOUR) == 0
    dom = dump_dom(page_of_game)
    assert "<script" not in dom
    path = re.search(r'<svg id="path".*?</svg>', dom, re.S)
    assert path is not None
    narrowings = re.findall(r">(?:steps?|records?|leaf|leaves|terms) [^<]* of \d+", path.group(0))
    assert narrowings and path.group(0).count("<rect") == 2 * len(narrowings)
    curve = re.search(r'<svg id="curve".*?</svg>', dom, re.S)
    assert curve is not None and curve.group(0).count("<circle") == 1 + segments.INTERVAL
    op = re.search(r'<dl id="op">(.*?)</dl>', dom, re.S)
    assert op is not None and "matmul_nt" in op.group(1) and "docs/exact.md" in op.group(1)
    assert "each product and each sum rounded" in op.group(1)  # the arithmetic rule's row
    values = re.search(r'<table id="values">(.*?)</table>', dom, re.S)
    assert values is not None and len(re.findall(r"<tr[ >]", values.group(1))) == 6
    moves = re.search(r'<table id="moves">(.*?)</table>', dom, re.S)
    assert moves is not None and 'class="bad"' in moves.group(1)


def test_a_differing_game_page_and_hostile_text(played: dict[str, Any], tmp_path: Path) -> None:
    from agents.audit.page import DIFFERS_COLOUR
    from tests.audit.browser import dump_dom, screenshot, share_of

    document = copy.deepcopy(played["value"])
    document["ruling"] = "BOTH_LOSE"
    audit = replay_game(document, played["store"], cache=_cache(), curve=False)
    hostile = '<script>document.title="owned"</script><img src="http://example.invalid/x">'
    audit.notes.append(hostile)
    page = tmp_path / "differs.html"
    page.write_text(render_game(audit), encoding="utf-8")
    pixels = screenshot(page, tmp_path / "differs.png", 390, 844)
    assert share_of(pixels[:40], DIFFERS_COLOUR) > 0.8
    dom = dump_dom(page)
    assert "<script" not in dom and "<img" not in dom and "&lt;script&gt;" in dom
    assert "the transcript's ruling" in dom


def test_export_on_the_command_line(
    played: dict[str, Any],
    devnet: Any,
    deployed_once: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``veritrain dispute export`` writes the transcript the library exports, which replays."""
    from agents.chain.deployment import MANIFEST_FORMAT

    game = deployed_once.arbitrated
    manifest = tmp_path / "deployment.json"
    manifest.write_text(
        json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "chain_id": ChainClient(devnet.url).chain_id(),
                "deployment_block": 0,
                "contracts": {"PinpointGame": {"address": game.address, "abi": game.abi}},
            }
        )
    )
    store_root = tmp_path / "store"
    _, artifacts = _store(store_root)
    document = played["value"]
    out = tmp_path / "game.json"
    chain = ["--rpc-url", devnet.url, "--deployment", str(manifest), "--store", str(store_root)]
    export = ["dispute", "export", str(document["game_id"]), "--out", str(out), *chain]
    cids = ["--spec", artifacts.spec, "--start", artifacts.start, "--claimed", artifacts.claimed]
    code, text, err = veritrain(capsys, *export, *cids, "--json")
    assert code == 0, text + err
    assert json.loads(text)["moves"] == len(document["moves"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    code, _, err = veritrain(capsys, *export, "--spec", artifacts.spec)
    assert code == 2 and "--task, --proof" in err
    code, text, err = veritrain(capsys, "dispute", "replay", str(out), "--store", str(store_root))
    assert code == 0 and "the recorded ruling holds" in text, text + err


def _opened_elsewhere(document: dict[str, Any], deployed: Any) -> dict[str, Any]:
    """``document`` as if another contract (a pool) had opened the game: the creation is a
    transaction somebody signed to that contract, whose calldata is not the game's."""
    from eth_account import Account

    document = copy.deepcopy(document)
    create = document["moves"][0]
    assert create["function"] == "create"
    somebody = Account.from_key(b"\x11" * 32)
    pool = deployed.jackpot.address
    signed = somebody.sign_transaction(
        {
            "to": pool,
            "value": 0,
            "gas": 100_000,
            "gasPrice": 10**9,
            "nonce": 999,
            "chainId": document["chain_id"],
            "data": "0x12345678",
        },
    )
    create.update(
        tx="0x" + bytes(signed.hash).hex(),
        raw="0x" + bytes(signed.raw_transaction).hex(),
        to=pool,
        function="",
        args=[],
    )
    create["from"] = somebody.address
    return document


def test_a_game_opened_by_another_contract(played: dict[str, Any], deployed_once: Any) -> None:
    """A game a pool opened replays from the creation's events, which the parties' commitments
    hold: an edited trace root in the creation is named at the first move it contradicts."""
    document = _opened_elsewhere(played["term"], deployed_once)
    assert _replay(document, played["store"]).exit_code == 0
    edited = copy.deepcopy(document)
    created = edited["moves"][0]["events"][0]
    assert created["event"] == "GameCreated"
    created["args"]["spec"][5] = _flip_hex(created["args"]["spec"][5])
    with pytest.raises(TamperedTranscriptError, match=r"Dissected: what the defender revealed"):
        _replay(edited, played["store"])
    edited = copy.deepcopy(document)
    edited["moves"][0]["function"] = "create"
    with pytest.raises(TamperedTranscriptError, match=r"moves\[0\]\.function"):
        _replay(edited, played["store"])
    edited = copy.deepcopy(document)
    edited["moves"][0]["to"] = edited["game"]
    with pytest.raises(TamperedTranscriptError, match=r"moves\[0\]\.to"):
        _replay(edited, played["store"])
