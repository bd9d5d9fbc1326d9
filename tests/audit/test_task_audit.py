"""``veritrain audit task`` on real rounds: anvil, agents as subprocesses, the devnet's store.

An honest round audits clean (exit 0) and its page renders in headless Chromium; a verifier
that passes a faked proof without replaying it is caught (exit 1, named); a corrupt copy of
an artifact, a dead endpoint and a task that does not exist are unusable input (exit 2).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agents.roles.record import proof
from agents.roles.situation import POOL
from agents.store import open_store
from agents.store.cid import CID
from scripts.protocol import sealed_roots, secret_hash
from tests.command_line import veritrain
from tests.e2e.conftest import Market, open_market

from .browser import screenshot, share_of
from .specs import exact_spec

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def rounds(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Market, int, int, list[int]]]:
    """One devnet with settled exact-mode tasks: an honest round; a faked proof that a verifier
    passed without replaying it (the verifier's account, its agent stopped); two malformed
    proofs (an artifact never published, a manifest that is not JSON) a verifier failed."""
    directory = tmp_path_factory.mktemp("audit")
    spec = exact_spec(directory)
    market = open_market(directory / "devnet")
    try:
        market.agent("solver")
        market.agent("verifier")
        honest = market.submit(spec)
        market.wait_settled(honest, timeout=900)
        for process in market.agents.values():
            process.stop(timeout=10)
        market.agents.clear()
        market.agent("solver", "--set", "solver.adversary=fake-half")
        lazy = market.submit(spec)
        market.wait(
            "the faked proof committed", lambda: market.task(lazy).status == "Committed", 600
        )
        _lazy_pass(market, lazy)
        market.wait("the lazy pass settled", lambda: market.task(lazy).final, 120)
        malformed = []
        for craft in ("missing-artifact", "manifest-not-json"):
            for process in market.agents.values():
                process.stop(timeout=10)
            market.agents.clear()
            market.agent("solver", "--set", f"solver.adversary=malformed:{craft}")
            market.agent("verifier")
            task_id = market.submit(spec)
            market.wait(f"the {craft} proof failed", _final(market, task_id), 600)
            malformed.append(task_id)
        yield market, honest, lazy, malformed
    finally:
        market.stop()


def _final(market: Market, task_id: int) -> Callable[[], bool]:
    return lambda: bool(market.task(task_id).final)


def _send(
    market: Market, function: str, args: tuple[Any, ...], value: int = 0, who: str = "verifier"
) -> None:
    """Sign and send one pool call from ``who``'s account; fail unless it succeeds."""
    keys = market.directory / "keys"
    key = Account.decrypt(
        json.loads((keys / f"{who}.json").read_text()), (keys / "password").read_text().strip()
    )
    account = Account.from_key(key)
    client, pool = market.client, market.deployment.contract(POOL)
    tx = {
        "to": pool.address,
        "data": "0x" + pool.encode_call(function, args).hex(),
        "value": value,
        "nonce": client.nonce(account.address),
        "gas": 3_000_000,
        "maxFeePerGas": 10**9,
        "maxPriorityFeePerGas": 0,
        "chainId": client.chain_id(),
        "type": 2,
    }
    signed = account.sign_transaction(tx)
    tx_hash = client.send_raw(bytes(signed.raw_transaction))
    for _ in range(100):
        receipt = client.receipt(tx_hash)
        if receipt is not None:
            assert receipt.succeeded, f"{function} reverted"
            return
        time.sleep(0.1)
    pytest.fail(f"{function} was not mined")


def _lazy_pass(market: Market, task_id: int) -> None:
    """Claim the verification with the (stopped) verifier agent's account, report every
    sampled distance as +0 (a pass) with made-up trace roots, no replay, and reveal."""
    pool = market.deployment.contract(POOL)
    client = market.client
    bounty = market.task(task_id).bounty
    amounts = pool.decode_output(
        "amounts", client.call(pool.address, pool.encode_call("amounts", (bounty,)))
    )
    stake = int(amounts[0][5] if isinstance(amounts[0], (list, tuple)) else amounts[5])
    secret = b"\x11" * 32
    _send(market, "claimVerification", (task_id, secret_hash(secret)), value=stake)
    market.wait("the solver's seed", lambda: market.task(task_id).randomness is not None, 120)
    count = int(
        pool.decode_output(
            "sampleCount", client.call(pool.address, pool.encode_call("sampleCount", (task_id,)))
        )
    )
    roots = [b"\x22" * 32] * count
    report: tuple[Any, ...] = ([0] * count, [], [], roots, sealed_roots(secret, roots))
    _send(market, "reportVerification", (task_id, report))
    view = market.task(task_id)
    market.wait("the challenge window", lambda: time.time() > view.deadline + 1, 60)
    before, (claim, drawn, reported) = proof(
        view, pool, ["VerificationClaimed", "RandomnessDrawn", "VerificationReported"]
    )
    _send(market, "revealVerification", (task_id, secret, roots, before, claim, drawn, reported))


def audit(market: Market, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``veritrain audit task ARGS`` in this process: (exit status, stdout, stderr)."""
    config = str(market.config("submitter"))
    return veritrain(capsys, "audit", "task", *args, "--config", config, "--quiet")


def test_an_honest_round_holds_at_every_point_and_its_page_renders(
    rounds: tuple[Market, int, int, list[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    market, honest, _, _ = rounds
    page = tmp_path / "report.html"
    code, out, err = audit(
        market, str(honest), "--json", "--html", str(page), "--workers", "2", capsys=capsys
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["holds"] and report["differences"] == []
    areas = {f["area"] for f in report["findings"]}
    assert areas == {"events", "spec", "randomness", "report", "verdict", "payouts"}
    view = market.task(honest)
    assert len(report["sample"]) == len(view.distances) == min(view.segments, 5 + 2)
    assert [s["reported_bits"] for s in report["segments"] if s["sampled"]] == [
        f"0x{d:08x}" for d in view.distances
    ]
    assert report["outcome"] == "Passed"
    from agents.audit.page import HOLDS_COLOUR

    pixels = screenshot(page, tmp_path / "phone.png", 390, 844)
    assert share_of(pixels[:40], HOLDS_COLOUR) > 0.8  # the banner, edge to edge
    assert (pixels[200:] != 255).any()  # the page goes on below it


def test_a_lazily_passed_fake_is_caught_and_named(
    rounds: tuple[Market, int, int, list[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    market, _, lazy, _ = rounds
    page = tmp_path / "report.html"
    code, out, _ = audit(market, str(lazy), "--json", "--html", str(page), capsys=capsys)
    assert code == 1
    report = json.loads(out)
    differing = {(d["area"], d["claim"]) for d in report["differences"]}
    assert ("report", "the trace roots are the auditor's") in differing
    assert ("report", "the verdict is the auditor's") in differing
    assert any(claim.endswith("reported distances are the auditor's") for _, claim in differing)
    # What did hold still holds: the record, the spec, the verdict rule, the payout table.
    holding = {f["area"] for f in report["findings"] if f["holds"]}
    assert {"events", "spec", "randomness", "verdict", "payouts"} <= holding
    code, text, _ = audit(market, str(lazy), capsys=capsys)
    assert code == 1 and "DIFFERS" in text and "the verdict is the auditor's" in text
    from agents.audit.page import DIFFERS_COLOUR

    pixels = screenshot(page, tmp_path / "desktop.png", 1280, 900)
    assert share_of(pixels[:40], DIFFERS_COLOUR) > 0.8


def test_malformed_proofs_fail_and_the_audit_agrees(
    rounds: tuple[Market, int, int, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    market, _, _, malformed = rounds
    for task_id in malformed:
        code, out, err = audit(market, str(task_id), "--json", capsys=capsys)
        assert code == 0, out + err
        report = json.loads(out)
        assert report["outcome"] == "Failed" and report["verdict"] == "Fail"
        claims = {f["claim"] for f in report["findings"] if f["area"] == "report"}
        assert "the trace roots are the auditor's" in claims  # the fault record's commitment
        assert report["segments"] == []  # rejected before any replay


def test_a_corrupt_artifact_in_the_store_is_unusable_input(
    rounds: tuple[Market, int, int, list[int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    market, honest, _, _ = rounds
    store_dir = Path(market.info.store)
    copy = tmp_path / "store"
    shutil.copytree(store_dir, copy)
    view = market.task(honest)
    manifest = open_store(copy).get_json(view.proof_cid or "")
    cid = manifest["checkpoints"][0]["cid"]
    # Checkpoint 0 is read by every verification: flip one byte of its copy.
    block = _block_file(copy, cid)
    data = bytearray(block.read_bytes())
    data[-1] ^= 0xFF
    block.write_bytes(bytes(data))
    code, _, err = audit(market, str(honest), "--store", str(copy), capsys=capsys)
    assert code == 2
    assert "corrupt" in err


def _block_file(store: Path, cid: str) -> Path:
    digest = CID.parse(cid).digest.hex()
    matches = list(store.rglob(digest))
    assert len(matches) == 1, matches
    return matches[0]


def test_a_dead_endpoint_or_a_missing_task_is_unusable_input(
    rounds: tuple[Market, int, int, list[int]], capsys: pytest.CaptureFixture[str]
) -> None:
    market, _, _, _ = rounds
    code, _, err = audit(market, "1", "--rpc-url", "http://127.0.0.1:9", capsys=capsys)
    assert code == 2 and "127.0.0.1:9" in err
    code, _, err = audit(market, "99", capsys=capsys)
    assert code == 2 and "no task 99" in err
