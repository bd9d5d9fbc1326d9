"""One whole protocol round on a fresh devnet, with scripted parties.

``python -m scripts.demo_round`` exercises the contracts alone (``make demo`` runs a
round with the real agents). It starts anvil on a free loopback port, deploys the
contracts (manifest in ``.demo/scripted/deployment.json``), and drives one exact-mode
task through submit → claim → commit → verification claim → the solver's seed → report →
the verifier's reveal, which settles the task and pays every party, with three scripted
accounts. The artifacts are real: the spec, the
checkpoints and the proof manifest go into an embedded artifact store
(``.demo/scripted/store``) and the chain gets their CIDs and commitments (PROTOCOL.md §4).
The scripted solver "trains" by a fixed update rule; the scripted verifier re-reads every
checkpoint from the store and checks its state root.

Every step prints its transaction, gas and events; at the end the balances are checked to
the wei against the settlement rules. Any deviation exits with status 1.

The program root the task records is not a program's. A task submitted with ``veritrain
submit`` records the root of its program in the pinpoint game's format
(``agents.roles.admission.program_root``: the training's ops, one step and the distance,
traced from the spec's model, dataset and optimizer), which every game of the task and every
distance claim checks op records against. This round's spec (``veritrain-demo-spec/1``) is
no training spec: a tensor layout and a fixed update rule, with no model, dataset or
optimizer to trace, so it has no program to take a root of; and its verifier's "trace
roots" are the segments' end state roots, not traces a game could bisect. It records
``sha256("veritrain-demo-program/1" ‖ spec hash)``, which no program header hashes to: a
challenge of its report or a distance claim reverts with ``ProgramMismatch``, and a proof
challenge could not be answered (the answer opens the game on the program). The agents never
get that far: the spec does not parse as a task spec, so they refuse the task. Challenges
and games on real tasks are what ``make demo DISPUTE=1`` (CHEAT=1, FORCED=1) play.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors

from agents.commitment import merkle_root, state_root
from agents.errors import VeritrainError
from agents.store import ArtifactStore, open_store
from scripts.deploy import DEFAULT_PARAMETERS, Deployment, deploy, manifest, write_manifest
from scripts.network import attached, local_devnet, revert, snapshot
from scripts.protocol import (
    FOLDED_EVENTS,
    Amounts,
    Mode,
    Outcome,
    Status,
    fold_record,
    forced_error,
    payouts,
    randomness,
    record_from_logs,
    sealed_roots,
    secret_hash,
    seed_hash,
)

DEMO_DIR = Path(".demo") / "scripted"
BOUNTY = 2 * 10**18
TRAINING_WINDOW = 3_600
CHECKPOINT_INTERVAL = 4
SEGMENTS = 6
ETH = 10**18


class DemoError(VeritrainError):
    """The round did not go as the protocol says it must."""

    exit_code = 1


@dataclass
class Parties:
    submitter: Any
    solver: Any
    verifier: Any


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoError(message)


def eth(wei: int) -> str:
    return f"{wei / ETH:,.6f} ETH"


def show(step: str, tx: Any) -> None:
    print(f"\n== {step}")
    print(f"   tx {tx.txid}  block {tx.block_number}  gas {tx.gas_used:,}")
    for event in tx.events:
        fields = ", ".join(f"{k}={_short(v)}" for k, v in event.items())
        print(f"   {event.name}({fields})")
    expect(tx.status == 1, f"{step}: the transaction reverted")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 20 else text[:12] + "…" + text[-6:]


def spec_document() -> dict[str, Any]:
    """The task the demo's submitter pays for (scripted parties read only its shape)."""
    return {
        "format": "veritrain-demo-spec/1",
        "description": "scripted demo round: a 4x3 linear layer, fixed update rule",
        "mode": "exact",
        "seed": 7,
        "steps": SEGMENTS * CHECKPOINT_INTERVAL,
        "checkpoint_interval": CHECKPOINT_INTERVAL,
        "tensors": {"layer.weight": [4, 3], "layer.bias": [4]},
    }


def train(spec: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    """The scripted solver's checkpoints: a seeded start and a fixed, deterministic update."""
    rng = np.random.default_rng(spec["seed"])
    state = {
        name: rng.standard_normal(shape).astype(np.float32)
        for name, shape in spec["tensors"].items()
    }
    checkpoints = [dict(state)]
    for _ in range(SEGMENTS):
        for _ in range(spec["checkpoint_interval"]):
            state = {name: (t * np.float32(0.99)).astype(np.float32) for name, t in state.items()}
        checkpoints.append(dict(state))
    return checkpoints


def publish_proof(
    store: ArtifactStore, checkpoints: list[dict[str, np.ndarray]]
) -> tuple[str, bytes]:
    """Store the checkpoints and the proof manifest; return its CID and the checkpoint root."""
    roots = [state_root(c) for c in checkpoints]
    cids = [store.put_bytes(save_tensors(c)) for c in checkpoints]
    proof = {
        "format": "veritrain-demo-proof/1",
        "checkpoints": [
            {"cid": cid, "state_root": root.hex()} for cid, root in zip(cids, roots, strict=True)
        ],
        "final_model": cids[-1],
    }
    return store.put_json(proof), merkle_root(roots)


def verify(
    store: ArtifactStore, proof_cid: str, checkpoint_root: bytes
) -> tuple[list[bytes], bytes]:
    """The scripted verifier: every checkpoint re-read from the store must match its committed root.

    Returns the recomputed state roots of the segment ends and the root over them.
    """
    proof = store.get_json(proof_cid)
    roots = []
    for entry in proof["checkpoints"]:
        tensors = load_tensors(store.get_bytes(entry["cid"]))
        root = state_root(tensors)
        expect(
            root.hex() == entry["state_root"],
            f"checkpoint {entry['cid']} does not match its state root",
        )
        roots.append(root)
    expect(
        merkle_root(roots) == checkpoint_root,
        "the proof does not match the committed checkpoint root",
    )
    ends = roots[1:]
    return ends, merkle_root(ends)


def balances(parties: Parties, deployment: Deployment) -> dict[str, int]:
    """Who holds what: the pool's task money apart from its accrued jackpot money."""
    accrued = int(deployment.pool.jackpotAccrued())
    return {
        "submitter": int(parties.submitter.balance()),
        "solver": int(parties.solver.balance()),
        "verifier": int(parties.verifier.balance()),
        "pool (tasks)": int(deployment.pool.balance()) - accrued,
        "jackpot": int(deployment.jackpot.balance()) + accrued,
    }


def print_balances(title: str, now: dict[str, int], start: dict[str, int]) -> None:
    print(f"\n-- balances {title}")
    for name, value in now.items():
        delta = value - start[name]
        print(f"   {name:12s} {eth(value):>24s}   change {'+' if delta >= 0 else ''}{eth(delta)}")


def folded(pool: Any, task_id: int, name: str) -> tuple[str, bytes]:
    """The record before the last ``name`` event of the task, and that event's data, from logs:
    what the calls that check values against the record take."""
    from brownie import web3

    events = {e["name"]: e for e in pool.abi if e["type"] == "event"}
    topic0 = {
        bytes(web3.keccak(text=f"{n}({','.join(i['type'] for i in e['inputs'])})")): n
        for n, e in events.items()
    }
    logs = web3.eth.get_logs(
        {
            "address": pool.address,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
        }
    )
    record, found = bytes(32), None
    for log in logs:
        event = topic0[bytes(log["topics"][0])]
        if event not in FOLDED_EVENTS:
            continue
        if event == name:
            found = ("0x" + record.hex(), bytes(log["data"]))
        record = fold_record(record, [bytes(t) for t in log["topics"]], bytes(log["data"]))
    expect(found is not None, f"no {name} event for task {task_id}")
    assert found is not None
    return found


def run_round(deployment: Deployment, parties: Parties, store: ArtifactStore) -> None:
    from brownie import web3
    from web3.types import RPCEndpoint

    pool = deployment.pool
    params = deployment.parameters
    amounts = Amounts.of(BOUNTY, params)
    start = balances(parties, deployment)
    print_balances("at the start", start, start)

    spec = spec_document()
    spec_cid = store.put_json(spec)
    spec_hash = "0x" + hashlib.sha256(store.get_bytes(spec_cid)).hexdigest()
    # No program exists for the scripted spec: its root only binds the spec (module docstring).
    program_root = (
        "0x"
        + hashlib.sha256(b"veritrain-demo-program/1" + bytes.fromhex(spec_hash[2:])).hexdigest()
    )
    terms = (spec_hash, program_root, BOUNTY, int(Mode.EXACT), TRAINING_WINDOW, SEGMENTS, 4, 0)
    tx = pool.submit(
        spec_cid,
        terms,
        {"from": parties.submitter, "value": BOUNTY + amounts.protocol_fee},
        silent=True,
    )
    show("submit: the bounty is escrowed, the protocol fee accrues to the jackpot", tx)
    task_id = int(tx.return_value)
    expect(pool.task(task_id)["status"] == Status.OPEN, "an exact task must be open at once")

    tx = pool.claim(task_id, {"from": parties.solver, "value": amounts.solver_stake}, silent=True)
    show("claim: the solver locks its stake", tx)

    checkpoints = train(spec)
    proof_cid, checkpoint_root = publish_proof(store, checkpoints)
    seed = hashlib.sha256(b"demo solver seed").digest()
    tx = pool.commit(
        task_id,
        proof_cid,
        "0x" + checkpoint_root.hex(),
        "0x" + seed_hash(seed).hex(),
        {"from": parties.solver},
        silent=True,
    )
    show("commit: proof CID, the Merkle root over the checkpoint state roots, the seed's hash", tx)

    # The demo shows the honest path (tests/contracts/test_forced_errors.py plays the forced
    # one). Whether the verifier is forced depends on the hash of the block that holds its claim,
    # known only once it is mined: on this devnet a forced claim is undone (evm_revert) and sent
    # again with another secret.
    for attempt in range(1_000):
        secret = hashlib.sha256(b"demo verifier secret" + attempt.to_bytes(4, "big")).digest()
        drawn = randomness(seed, secret_hash(secret), task_id)
        unclaimed = snapshot()
        tx = pool.claimVerification(
            task_id,
            "0x" + secret_hash(secret).hex(),
            {"from": parties.verifier, "value": amounts.verifier_stake},
            silent=True,
        )
        claim_hash = bytes(web3.eth.get_block(tx.block_number)["hash"])
        if not forced_error(secret, drawn, claim_hash, params.forcedErrorPpm):
            break
        print("   (the claim's block forced this verifier to err: undone on the devnet)")
        revert(unclaimed)
    show(
        "claim verification: stake, and the secret's hash (the verifier's share of the randomness)",
        tx,
    )

    before, commit_data = folded(pool, task_id, "ProofCommitted")
    _, claim_data = folded(pool, task_id, "VerificationClaimed")
    tx = pool.revealSeed(
        task_id,
        "0x" + seed.hex(),
        before,
        commit_data,
        claim_data,
        {"from": parties.solver},
        silent=True,
    )
    expect(
        bytes(tx.events["RandomnessDrawn"]["claimBlockHash"]) == claim_hash,
        "the draw must record the claim block's hash",
    )
    show("reveal seed: the randomness is fixed from both shares", tx)
    expect(bytes(tx.events["RandomnessDrawn"]["randomness"]) == drawn, "unexpected randomness")

    ends, _ = verify(store, proof_cid, checkpoint_root)
    count = int(pool.sampleCount(task_id))
    print(f"\n   verifier: all {len(ends)} checkpoints match their roots;")
    print(f"   reporting {count} sampled distances, all 0")
    # The scripted verifier's "trace" of a segment is its replayed end state root.
    roots = ends[:count]
    seal = "0x" + sealed_roots(secret, roots).hex()
    tx = pool.reportVerification(
        task_id,
        ([0] * count, [], [], ["0x" + r.hex() for r in roots], seal),
        {"from": parties.verifier},
        silent=True,
    )
    show("report: distances, one trace root per segment, the seal; the chain decides", tx)
    expect(pool.task(task_id)["outcome"] == Outcome.PASSED, "the verdict should be a pass")

    print(f"\n   (devnet clock advanced past the {params.challengeWindow} s challenge window)")
    web3.provider.make_request(RPCEndpoint("evm_increaseTime"), [params.challengeWindow + 1])
    before, claim_data = folded(pool, task_id, "VerificationClaimed")
    _, drawn_data = folded(pool, task_id, "RandomnessDrawn")
    _, report_data = folded(pool, task_id, "VerificationReported")
    tx = pool.revealVerification(
        task_id,
        "0x" + secret.hex(),
        ["0x" + r.hex() for r in roots],
        before,
        claim_data,
        drawn_data,
        report_data,
        {"from": parties.verifier},
        silent=True,
    )
    show("reveal: not forced; the verdict stands, every party is paid", tx)

    end = balances(parties, deployment)
    print_balances("at the end", end, start)
    check_books(deployment, task_id, amounts, start, end)


def check_books(
    deployment: Deployment,
    task_id: int,
    amounts: Amounts,
    start: dict[str, int],
    end: dict[str, int],
) -> None:
    """Every wei where the settlement rules put it; the task record rebuilt from the logs."""
    from brownie import web3

    pool = deployment.pool
    # The verifier made the task's first claim: its report may have been forced, so it pays
    # the forced-error tax to the jackpot out of its fee.
    expected = payouts(Outcome.PASSED, amounts, False, deployment.parameters, taxed=True)
    change = {name: end[name] - start[name] for name in start}
    expect(
        change["submitter"] == -(BOUNTY + amounts.protocol_fee),
        f"submitter paid {-change['submitter']} wei, not the bounty plus the fee",
    )
    expect(
        change["solver"] == expected.solver - amounts.solver_stake,
        f"solver earned {change['solver']} wei, expected {expected.solver - amounts.solver_stake}",
    )
    expect(
        change["verifier"] == expected.verifier - amounts.verifier_stake,
        f"verifier earned {change['verifier']} wei, expected the fee less the forced-error tax"
        f" {amounts.verification_fee - amounts.forced_error_tax}",
    )
    expect(
        change["jackpot"] == amounts.protocol_fee + expected.jackpot,
        "the jackpot did not receive the protocol fee and the forced-error tax",
    )
    expect(sum(change.values()) == 0, f"the balances do not add up: {sum(change.values())} wei off")
    expect(end["pool (tasks)"] == 0, "the pool still holds task money after every withdrawal")
    expect(pool.task(task_id)["status"] == Status.SETTLED, "the task is not settled")

    events = {e["name"]: e for e in pool.abi if e["type"] == "event"}
    topic0 = {
        name: web3.keccak(text=f"{name}({','.join(i['type'] for i in e['inputs'])})")
        for name, e in events.items()
    }
    logs = web3.eth.get_logs(
        {
            "address": pool.address,
            "fromBlock": deployment.block,
            "toBlock": "latest",
            "topics": [None, "0x" + task_id.to_bytes(32, "big").hex()],
        }
    )
    rebuilt = record_from_logs(
        [dict(log) for log in logs], {k: bytes(v) for k, v in topic0.items()}, task_id
    )
    expect(
        rebuilt == bytes(pool.task(task_id)["record"]),
        "the task record does not follow from its logs",
    )
    print(f"\nok: task {task_id} settled Passed, the balances add up to the wei,")
    print(f"    and its record follows from its {len(logs)} logs")


def main() -> int:
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    store = open_store(DEMO_DIR / "store")
    try:
        with local_devnet(accounts=4, balance_eth=100) as node, attached(node) as project:
            from brownie import accounts

            print(f"devnet: anvil at {node.url} (chain 31337)")
            deployment = deploy(project, accounts[0], DEFAULT_PARAMETERS, silent=True)
            path = write_manifest(
                manifest(project, deployment, node.url), DEMO_DIR / "deployment.json"
            )
            print(
                f"deployed TaskPool {deployment.pool.address}, Jackpot {deployment.jackpot.address}"
            )
            print(f"manifest: {path}")
            parties = Parties(accounts[1], accounts[2], accounts[3])
            run_round(deployment, parties, store)
    except VeritrainError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
