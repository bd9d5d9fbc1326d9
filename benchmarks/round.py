"""One whole round on a devnet against plain training of the same spec, on this machine.

For two specs, ``demo`` (examples/digits-mlp.yaml) and ``long`` (the digits MLP with
two hidden layers of 256 in exact mode, its steps calibrated here so that plain training
takes at least 60 s, in 200 segments like the demo spec):

- ``plain_train_s``: training the spec with no protocol at all (the spec's backend with
  the solver's threads, ``SOLVER_THREADS``, warm; its data order, the batches of every
  step, is computed within the time, as any training of the spec computes it; no
  checkpoints, no proof, no chain);
- ``round_s``: from the block of the submission to the block of the settlement, with
  a solver and a verifier agent running as separate processes on this machine, both warm
  (the submission waits for their ``engine warm``; the devnet's challenge window is 2 s;
  the solver trains with ``solver.threads = SOLVER_THREADS``, the verifier replays its
  sampled segments side by side, ``verifier.threads = 0``); a tolerant task's submitter
  follows it (``veritrain submit --follow``, a third process) to review its profile, which it
  accepts as soon as its checks pass, as a submitter's agent does;
- ``overhead`` = round_s / plain_train_s (goal ≤ 1.15 for ``long``);
- ``reaction_ms``: the median, over the agents' transactions that answer an event
  (claims, verification claims, randomness draws, withdrawals after the settlement),
  of the time from the event's block appearing on the node to the answer's broadcast;
- ``phases_s``: the round split at its events (profile, claim, train and commit,
  verification claim, seed reveal, replay and report, challenge window and settlement);
- ``cpu_s`` and ``training_cpu_s``: the CPU seconds each process (the agents, the submitter
  following its task, anvil, and this benchmark's own process with its block watcher) used
  over the round, and while the solver trained (``TaskClaimed->ProofCommitted``): what
  else ran on the machine's cores beside the training;
- ``training_thread_cpu_s``: the CPU seconds of the solver's training job's own thread (as
  its ``work done`` log line states; the checkpoint writer's thread and the agent's loop
  not counted), to set against ``plain_train_s``, whose one thread runs alone: more CPU
  there is the training's own work costing more, a phase longer than both is waiting;
- ``replayed_segments``: how many segments the verifier replayed (its sample of s + 2 and
  the segments screening flagged, at most four more), and ``replay_split_s``, from its
  ``verification times`` log line: ``checks`` (reading and screening every checkpoint until
  the selection was known; the sample's replays run meanwhile on the other workers),
  ``replays`` (from its first replay's start to its last one's end) and ``verification``
  (the whole check and replay); the rest of ``RandomnessDrawn->VerificationReported`` is
  the job's start, reading the task and the manifest, and the report's transaction.

The demo spec is measured in ``RUNS`` pairs and the long one in ``LONG_RUNS`` (its plain
runs on this shared machine vary by a fifth within one benchmark run, so its median
needs more pairs to mean something), interleaved: plain training, a round on a fresh
devnet, plain training, the next round, ..., plain training (``plain_each_s``: one plain
run more than rounds). A round's baseline is the mean of the plain runs just before and
just after it, so that the machine's speed drifting over the minutes of a pair (this
shared machine's did, by a third within one benchmark run) weighs on both sides alike.
``overhead_runs`` lists each pair's round_s / plain_train_s, ``overhead`` is their median
and ``overhead_spread`` their range (max - min), so a reader can tell a change from
noise; ``plain_train_runs_s`` (the pairs' baselines) and ``round_runs_s`` list the runs,
``plain_train_s`` and ``round_s`` are their medians, and ``phases_s`` and the reactions
come from the pair of the median overhead.

The protocol's fixed costs do not grow with the task: ``fixed_s`` is the part of the
round outside the profile of τ (tolerant mode, ``TaskSubmitted->TaskProfiled``),
training with its proof (``TaskClaimed->ProofCommitted``) and the replay of the sampled
segments (``RandomnessDrawn->VerificationReported``), which all grow with the task's
length (median over the runs); ``scaling`` = (profile + training with proof + replay) /
plain training. A task whose plain training takes T seconds then has an
overhead of about ``scaling + fixed_s / T``: ``overhead_1h`` for an hour's task.

Block times come from a watcher polling the node every 50 ms (block timestamps
have a resolution of one second); it polls no more often, and with a request of its own
over one kept-open connection (about 0.1 ms of CPU a poll, where the JSON-RPC client's took
0.5–1.7 ms), so as to take little of the cores the round runs on. When it first sees a
block it also reads each process's CPU time (``/proc/<pid>/stat``).
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.chain.events import read_events
from agents.devnet import lifecycle
from agents.devnet.anvil import REPO_ROOT
from agents.devnet.processes import AgentProcess, child_env, cli_command
from agents.roles.situation import POOL
from agents.roles.tasks import fold_all

DEMO_SPEC = REPO_ROOT / "examples" / "digits-mlp.yaml"
LONG_TARGET_S = 66.0  # aim above 60 s so that noise does not bring plain training under it
LONG_MIN_S = 60.0
LONG_SEGMENTS = 200  # as the demo spec: a verifier replays 5 segments of 1/200 of the run each
RUNS = 3  # paired (plain, round) runs of the demo spec
LONG_RUNS = 5  # paired runs of the long spec, whose overhead has a goal
# The phases that grow with the task's length: profiling τ (a share of the task's steps,
# tolerant mode only), training with the proof, replaying segments.
SCALING_PHASES = (
    "TaskSubmitted->TaskProfiled",
    "TaskClaimed->ProofCommitted",
    "RandomnessDrawn->VerificationReported",
)
HOUR_S = 3600.0
# The solver trains with the default solver.threads, and plain training with as many; the
# verifier replays its sampled segments side by side, one per core (verifier.threads).
SOLVER_THREADS = 1
AGENT_ENV = {
    "solver": {"VERITRAIN_SOLVER_THREADS": str(SOLVER_THREADS)},
    "verifier": {"VERITRAIN_VERIFIER_THREADS": "0"},
}
WATCH_S = 0.05  # the block watcher's poll interval
WATCH_TIMEOUT_S = 2.0  # the longest the watcher waits for one answer
HEAD_REQUEST = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
HEAD_HEADERS = {"Content-Type": "application/json"}
WARM_TIMEOUT_S = 300.0  # the longest wait for the agents' engines to be warm
# The answers to events: claims, verification claims, the solver's seed reveal (which draws the
# randomness), withdrawals after the settlement.
REACTIONS = ("claim/", "claim-verification/", "reveal-seed/", "withdraw/")


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user and system) process ``pid`` has used so far (None: not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BlockWatcher:
    """Records when each block number is first seen on the node (wall clock), and the CPU
    time each watched process (name: pid) had used by then.

    It asks for the head over one kept-open HTTP connection with a request body built once
    (``eth_blockNumber``), opened again after a failure: the JSON-RPC client's general
    request path cost about 1.7 ms of CPU per poll, taken from the cores the round runs on
    twenty times a second."""

    def __init__(self, url: str, processes: dict[str, int] | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._path = parts.path or "/"
        self._connection: http.client.HTTPConnection | None = None
        self.seen: dict[int, float] = {}
        self.processes = dict(processes or {})
        self.cpu: dict[int, dict[str, float]] = {}
        self.head = -1  # the newest block seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def block_number(self) -> int | None:
        """The node's head block number, or ``None`` when the node did not answer one."""
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=WATCH_TIMEOUT_S
                )
            self._connection.request("POST", self._path, HEAD_REQUEST, HEAD_HEADERS)
            response = self._connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            return int(json.loads(body)["result"], 16)
        except (OSError, http.client.HTTPException, ValueError, LookupError, TypeError):
            if self._connection is not None:
                self._connection.close()
            self._connection = None  # opened again at the next poll
            return None

    def _loop(self) -> None:
        last = -1
        while not self._stop.is_set():
            number = self.block_number()
            head = last if number is None else number
            now = time.time()
            if head > last:
                cpu = {name: cpu_seconds(pid) for name, pid in list(self.processes.items())}
                used = {name: seconds for name, seconds in cpu.items() if seconds is not None}
            for number in range(last + 1, head + 1):
                self.seen.setdefault(number, now)
                self.cpu.setdefault(number, used)
            last = max(last, head)
            self.head = last
            self._stop.wait(WATCH_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        if self._connection is not None:
            self._connection.close()


def plain_train_s(spec_path: Path) -> float:
    """Seconds to train the spec with its backend (warm, ``SOLVER_THREADS``) and nothing else:
    the batches of its steps, then the steps."""
    from agents.learning.backends import get_backend
    from agents.learning.spec import load_spec
    from agents.learning.task import open_task
    from agents.store import open_store

    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory() as scratch:
        task = open_task(spec, open_store(scratch))
        exact = spec.verification.tolerance == "exact"
        name = "exact" if exact else "native"
        backend = get_backend(name, threads=SOLVER_THREADS)
        session = backend.start(task, task.initial_state())
        session.run(task.batches(0, 1))  # warm: the first step pays for caches
        session = backend.start(task, task.initial_state())
        started = time.perf_counter()
        session.run(task.batches(0, spec.steps))
        return time.perf_counter() - started


def long_spec(directory: Path) -> Path:
    """The digits MLP, wider and in exact mode, with steps calibrated here so that plain
    training takes at least 60 s (``LONG_TARGET_S``), in ``LONG_SEGMENTS`` segments."""
    from agents.learning.backends import get_backend
    from agents.learning.spec import parse_spec
    from agents.learning.task import open_task
    from agents.store import open_store

    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["name"] = "digits-mlp-long"
    document["model"]["hidden"] = [256, 256]
    document["batch_size"] = 128
    document["verification"]["tolerance"] = "exact"
    document["verification"]["segments"] = 5
    document["verification"].pop("tau", None)
    document["steps"], document["checkpoint_interval"] = 1100, 11  # for the calibration
    spec = parse_spec(document)
    with tempfile.TemporaryDirectory() as scratch:
        task = open_task(spec, open_store(scratch))
        session = get_backend("exact", threads=SOLVER_THREADS).start(task, task.initial_state())
        session.run(task.batches(0, 50))  # warm up: first steps pay for compilation and caches
        started = time.perf_counter()
        session.run(task.batches(50, 1000))
        per_step = (time.perf_counter() - started) / 1000
    path = directory / "digits-mlp-long.yaml"
    _write_long_spec(path, document, LONG_TARGET_S / per_step)
    return path


def _write_long_spec(path: Path, document: dict[str, Any], steps: float) -> None:
    """Write ``document`` with at least ``steps`` steps, a multiple of ``LONG_SEGMENTS``."""
    k = max(1, math.ceil(steps / LONG_SEGMENTS))
    document["steps"], document["checkpoint_interval"] = k * LONG_SEGMENTS, k
    schedule = document["schedule"]
    if "warmup" in schedule:
        schedule["warmup"] = min(int(schedule["warmup"]), document["steps"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def long_baseline(path: Path) -> float:
    """Plain training of the long spec, its steps raised until it takes ``LONG_MIN_S``
    (the calibration's short run can misjudge the speed of a long one on a busy machine)."""
    plain = plain_train_s(path)
    for _ in range(3):
        if plain >= LONG_MIN_S:
            break
        document = yaml.safe_load(path.read_text())
        _write_long_spec(path, document, document["steps"] * LONG_TARGET_S / plain)
        plain = plain_train_s(path)
    return plain


def wait_warm(agents: list[AgentProcess]) -> None:
    """Wait until every agent logged the end of its warm-up (imports, compiled kernels), so
    that no warm-up runs beside the round."""
    deadline = time.monotonic() + WARM_TIMEOUT_S
    waiting = list(agents)
    while waiting:
        dead = [a.role for a in waiting if not a.alive]
        if dead or time.monotonic() > deadline:
            raise RuntimeError(f"agents not warm (dead: {dead})")
        waiting = [a for a in waiting if not _warm(_text(a.log))]
        time.sleep(0.2)


def _warm(log: str) -> bool:
    """Whether an agent's log says its warm-up ended (a failed one only delays a first job)."""
    return 'msg="engine warm"' in log or 'msg="warm-up failed"' in log


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _submit(command: list[str]) -> None:
    """Submit the task (the command returns once the submission is mined)."""
    submitted = subprocess.run(
        command, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=600
    )
    if submitted.returncode != 0:
        raise RuntimeError(f"submit failed: {submitted.stderr.strip()}")


def _follow(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Submit the task and follow it as its submitter does (``--follow``: the submitter's loop
    until the task is settled and paid out), in a process of its own logging to ``log``; it
    runs no jobs, so it loads no engine (``agent.warm_up`` off)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*command, "--follow", "--set", "agent.warm_up=false"],
            cwd=REPO_ROOT,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def round_on_devnet(spec_path: Path, directory: Path) -> dict[str, Any]:
    """One round of ``spec_path`` on a fresh devnet; returns round_s, reaction_ms and phases."""
    info = lifecycle.up(directory, parameters={"challengeWindow": 2}, say=lambda _line: None)
    watcher = BlockWatcher(info.url, {"anvil": info.pid, "bench": os.getpid()})
    tolerant = yaml.safe_load(spec_path.read_text())["verification"]["tolerance"] != "exact"
    agents = [
        AgentProcess(
            role, Path(info.configs[role]), directory / f"{role}.log", env=AGENT_ENV.get(role, {})
        )
        for role in ("solver", "verifier")
    ]
    submit = cli_command(
        "submit", str(spec_path), "--bounty", "1eth", "--config", info.configs["submitter"]
    )
    follower: subprocess.Popen[bytes] | None = None
    try:
        for agent in agents:
            agent.start()
            assert agent.process is not None
            watcher.processes[agent.role] = agent.process.pid
        wait_warm(agents)  # both agents up, polling and warm before the clock starts
        if tolerant:
            # The submitter follows a tolerant task to review its profile, accepting it once
            # its checks pass (solvers claim then, not at the end of the review window).
            follower = _follow(submit, directory / "submitter.log")
            watcher.processes["submitter"] = follower.pid
        else:
            _submit(submit)
        client = ChainClient(info.url)
        deployment = load_deployment(Path(info.manifest))
        pool = deployment.contract(POOL)
        deadline = time.monotonic() + 3600
        read_at = -1  # the head block when the events were last read
        view = None
        while True:
            head = watcher.head
            if head != read_at:  # no new block, no new event: nothing to read (training)
                read_at = head
                view = fold_all(read_events(client, [pool], deployment.block)).get(1)
            if view is not None and view.final and view.withdrawn:
                break
            dead = [a.role for a in agents if not a.alive]
            if follower is not None and follower.poll() not in (None, 0):
                dead.append("submitter")
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"round did not settle (dead agents: {dead})")
            time.sleep(1.0)  # round_s comes from the watcher: no need to look often
    finally:
        if follower is not None and follower.poll() is None:
            follower.terminate()  # the submitter's loop ends its tick and exits
            follower.wait(timeout=20)
        for agent in agents:
            agent.stop()
        watcher.stop()
        lifecycle.down(directory)
    blocks = {e.name: e.block for e in view.timeline}
    seen = watcher.seen
    phases = {}
    order = [
        "TaskSubmitted",
        "TaskProfiled",
        "TaskClaimed",
        "ProofCommitted",
        "VerificationClaimed",
        "RandomnessDrawn",
        "VerificationReported",
        "TaskSettled",
    ]
    present = [name for name in order if name in blocks]
    for first, second in itertools.pairwise(present):
        phases[f"{first}->{second}"] = round(seen[blocks[second]] - seen[blocks[first]], 3)
    reactions = []
    for role in ("solver", "verifier"):
        db = sqlite3.connect(
            f"file:{directory / 'agents' / role / 'agent.sqlite'}?mode=ro", uri=True
        )
        for intent, trigger, sent_at in db.execute(
            "SELECT intent, trigger_block, sent_at FROM tx_journal WHERE status = 'mined'"
        ):
            answered = intent.startswith(REACTIONS) and sent_at is not None
            if intent.startswith("withdraw/") and trigger != blocks["TaskSettled"]:
                continue  # a withdrawal that settles waited for the window, not for an event
            if answered and trigger in seen:
                reactions.append(1000.0 * (sent_at - seen[trigger]))
        db.close()
    return {
        "round_s": round(seen[blocks["TaskSettled"]] - seen[blocks["TaskSubmitted"]], 3),
        "cpu_s": cpu_between(watcher.cpu, blocks["TaskSubmitted"], blocks["TaskSettled"]),
        "training_cpu_s": cpu_between(watcher.cpu, blocks["TaskClaimed"], blocks["ProofCommitted"]),
        "training_thread_cpu_s": job_cpu(_text(directory / "solver.log"), "train/"),
        **verification_times(_text(directory / "verifier.log")),
        "reaction_ms": round(statistics.median(reactions), 1) if reactions else None,
        "reactions": len(reactions),
        "outcome": view.outcome,
        "phases_s": phases,
    }


def job_cpu(log: str, prefix: str) -> float | None:
    """The CPU seconds the thread of the agent's last finished job whose key starts with
    ``prefix`` used, as its log line ``work done`` states (None: no such line)."""
    cpu = None
    for line in log.splitlines():
        if 'msg="work done"' not in line:
            continue
        fields = dict(
            field.split("=", 1) for field in line.split() if "=" in field and '"' not in field
        )
        if fields.get("key", "").startswith(prefix) and "cpu" in fields:
            cpu = float(fields["cpu"])
    return cpu


def verification_times(log: str) -> dict[str, Any]:
    """``replayed_segments`` and ``replay_split_s`` from the verifier's last ``verification
    times`` log line: ``checks`` (reading and screening every checkpoint until the selection
    is known; the sample's replays run meanwhile), ``replays`` (the first replay's start to
    the last one's end) and ``verification`` (the whole check and replay); empty without one."""
    fields: dict[str, str] = {}
    for line in log.splitlines():
        if 'msg="verification times"' in line:
            fields = dict(
                field.split("=", 1) for field in line.split() if "=" in field and '"' not in field
            )
    if not fields:
        return {}
    split = {
        name: float(fields[key])
        for name, key in (
            ("checks", "checks_s"),
            ("replays", "replays_s"),
            ("verification", "seconds"),
        )
        if key in fields
    }
    return {"replayed_segments": int(fields["segments"]), "replay_split_s": split}


def cpu_between(cpu: dict[int, dict[str, float]], first: int, last: int) -> dict[str, float]:
    """The CPU seconds each watched process used from block ``first`` to block ``last`` (as
    the watcher first saw them)."""
    before, after = cpu.get(first, {}), cpu.get(last, {})
    return {name: round(after[name] - before[name], 2) for name in after if name in before}


def measure(
    spec_path: Path, directory: Path, runs: int = RUNS, first_plain: float | None = None
) -> dict[str, Any]:
    """``runs`` rounds of ``spec_path`` (each on its own devnet under ``directory``) between
    ``runs + 1`` plain runs; ``first_plain`` is a plain run already timed just before, used
    as the first."""
    plains = [first_plain if first_plain is not None else plain_train_s(spec_path)]
    results: list[dict[str, Any]] = []
    for run in range(runs):
        results.append(round_on_devnet(spec_path, directory / f"run{run}"))
        plains.append(plain_train_s(spec_path))
    spec = yaml.safe_load(spec_path.read_text())
    return {
        "spec": spec["name"],
        "mode": spec["verification"]["tolerance"],
        "steps": spec["steps"],
        "segments": spec["steps"] // spec["checkpoint_interval"],
        **summarize(sandwiched(plains, results)),
        "plain_each_s": [round(plain, 3) for plain in plains],
    }


def sandwiched(
    plains: list[float], results: list[dict[str, Any]]
) -> list[tuple[float, dict[str, Any]]]:
    """Pairs of (baseline, round): round ``i`` ran between plain runs ``i`` and ``i + 1``,
    its baseline is their mean."""
    if len(plains) != len(results) + 1:
        raise ValueError("one plain run before each round and one after the last")
    return [((plains[i] + plains[i + 1]) / 2, result) for i, result in enumerate(results)]


def summarize(pairs: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The figures of paired (plain seconds, round result) runs (see the module docstring)."""
    overheads = [result["round_s"] / plain for plain, result in pairs]
    # The pair of the median overhead (the lower middle one for an even count).
    middle = sorted(range(len(pairs)), key=lambda i: overheads[i])[(len(pairs) - 1) // 2]
    plain_s = statistics.median([plain for plain, _ in pairs])
    fixed, scaling = [], []
    for plain, result in pairs:
        growing = sum(result["phases_s"].get(name, 0.0) for name in SCALING_PHASES)
        fixed.append(result["round_s"] - growing)
        scaling.append(growing / plain)
    fixed_s = statistics.median(fixed)
    scaling_ratio = statistics.median(scaling)
    return {
        **pairs[middle][1],
        "plain_train_s": round(plain_s, 3),
        "plain_train_runs_s": [round(plain, 3) for plain, _ in pairs],
        "round_s": round(statistics.median([r["round_s"] for _, r in pairs]), 3),
        "round_runs_s": [round(r["round_s"], 3) for _, r in pairs],
        "overhead": round(statistics.median(overheads), 3),
        "overhead_runs": [round(o, 3) for o in overheads],
        "overhead_spread": round(max(overheads) - min(overheads), 3),
        "fixed_s": round(fixed_s, 3),
        "scaling": round(scaling_ratio, 3),
        "overhead_1h": round(scaling_ratio + fixed_s / HOUR_S, 3),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="veritrain-round-") as scratch:
        root = Path(scratch)
        figures: dict[str, Any] = {"demo": measure(DEMO_SPEC, root / "demo")}
        path = long_spec(root)
        figures["long"] = measure(
            path, root / "long", runs=LONG_RUNS, first_plain=long_baseline(path)
        )
    figures["goal_long_overhead"] = 1.15
    return figures
