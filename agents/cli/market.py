"""``veritrain submit | cancel | withdraw | tasks | task show``: the market, for everyone."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from agents.chain.errors import ChainError
from agents.chain.events import read_events
from agents.chain.executor import Intent
from agents.chain.journal import JournalEntry
from agents.cli.output import echo_json
from agents.cli.settings import (
    chain_options,
    format_eth,
    parse_amount,
    parse_duration,
    resolve_config,
)
from agents.commitment import Digest
from agents.errors import VeritrainError
from agents.exact.float32 import from_bits32, to_bits
from agents.node.config import AgentConfig
from agents.node.logs import configure_logging
from agents.roles import intents
from agents.roles import submitter as submitter_role
from agents.roles.admission import check_submittable, program_root
from agents.roles.agent import Agent
from agents.roles.connection import Connection, connect
from agents.roles.situation import POOL, Situation
from agents.roles.tasks import MODES, TaskView, fold, fold_all, task_subject

log = logging.getLogger("veritrain.market")


class TaskError(VeritrainError):
    """A task does not exist or is not in a state that allows what was asked."""


def _connect(config: AgentConfig, *, signer: bool) -> Connection:
    return connect(config, "submitter", with_data=signer, with_key=signer)


def _task_views(conn: Connection) -> dict[int, TaskView]:
    pool = conn.deployment.contract(POOL)
    return fold_all(read_events(conn.client, [pool], conn.deployment.block))


def _one_task(conn: Connection, task_id: int) -> TaskView:
    pool = conn.deployment.contract(POOL)
    events = [
        e
        for e in read_events(conn.client, [pool], conn.deployment.block)
        if task_subject(e) == task_id
    ]
    if not events:
        raise TaskError(f"no task {task_id} on the pool {pool.address}")
    return fold(task_id, events)


# -- submit, cancel, withdraw ----------------------------------------------------------------


@click.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--bounty", required=True, help="Bounty, e.g. 1.5eth or 20gwei (a bare integer is wei)."
)
@click.option(
    "--training-window", default="1h", show_default=True, help="Time the solver has to commit."
)
@click.option(
    "--tau-bound",
    default=None,
    help="Tolerant tasks: the largest τ a profile may post (default: the pool's maxThreshold).",
)
@click.option(
    "--wait",
    "mined_wait",
    default="2m",
    show_default=True,
    help="How long to wait for the submission to be mined; after that it stays journaled and "
    "the same command run again follows it instead of sending another.",
)
@click.option(
    "--again",
    is_flag=True,
    help="Submit another task even if an earlier submission of this spec with these terms is "
    "still in flight or its task not settled (without it, a rerun follows that one).",
)
@click.option("--follow", is_flag=True, help="Stay until the task is settled and paid out.")
@click.option(
    "--timeout",
    "follow_timeout",
    default="0",
    help="With --follow: give up after this long (0: never).",
)
@click.option(
    "--expect",
    type=click.Choice(
        ["Passed", "Failed", "Cancelled", "Expired", "SolverTimedOut", "Unverified", "SeedWithheld"]
    ),
    help="With --follow: exit 1 unless the task settles with this outcome.",
)
@chain_options
def submit(
    spec_path: Path,
    bounty: str,
    training_window: str,
    tau_bound: str | None,
    mined_wait: str,
    again: bool,
    follow: bool,
    follow_timeout: str,
    expect: str | None,
    config_path: Path | None,
    overrides: tuple[str, ...],
    **flags: Any,
) -> None:
    """Submit the task spec SPEC (YAML or JSON) with a bounty; print the task id.

    Run again after it stopped waiting (or was killed), the same command sends nothing new
    while this account's earlier submission of the same spec and terms is in flight or its
    task is not settled: it follows that submission, or reports its task, instead (--again
    submits another task all the same).
    """
    from agents.learning.spec import load_spec
    from agents.learning.task import open_task

    config = resolve_config("submitter", config_path, overrides, **flags)
    configure_logging(config.agent.log_format, "warning")
    wei = parse_amount(bounty)
    window = parse_duration(training_window)
    spec = load_spec(spec_path)
    conn = _connect(config, signer=True)
    problem = check_submittable(spec, conn.params)
    if problem is not None:
        raise VeritrainError(f"{spec_path}: {problem}")
    if wei < conn.params.min_bounty:
        raise VeritrainError(
            f"bounty {format_eth(wei)} is below the pool's minimum "
            f"{format_eth(conn.params.min_bounty)}"
        )
    open_task(spec, conn.store)  # the dataset must exist (it is built from its source if needed)
    spec_cid = conn.store.put_bytes(spec.canonical_bytes())
    conn.store.pin(spec_cid)
    assert conn.executor is not None
    conn.executor.reconcile()  # finish what an interrupted earlier command left in flight
    amounts = conn.executor.call(POOL, "amounts", (wei,))
    value = int(amounts[0]) + int(amounts[1])
    mode = MODES.index(spec.verification.tolerance)
    bound = _threshold_bound(spec.verification.tolerance, tau_bound, conn.params.max_threshold)
    terms = (
        "0x" + spec.spec_hash().hex(),
        program_root(spec, conn.store).chain,
        wei,
        mode,
        window,
        spec.segment_count,
        spec.verification.segments,
        bound,
    )
    wait = parse_duration(mined_wait)
    pool = conn.deployment.contract(POOL)
    call = pool.encode_call("submit", (spec_cid, terms))
    earlier = None if again else _unsettled_submission(conn, call)
    if earlier is None:
        _say_other_terms(conn, spec_cid, call)
        key = intents.submit(spec_cid, time.time_ns())
        conn.executor.submit(
            Intent(key=key, contract=POOL, function="submit", args=(spec_cid, terms), value=value),
            strict=True,
        )
    else:
        key = earlier.intent
        _say_followed(earlier)
    entry = _wait_mined(conn, key, wait)
    task_id = _submitted_task(conn, entry)
    click.echo(
        f"task {task_id} submitted: spec {spec_cid}, bounty {format_eth(wei)} "
        f"(+{format_eth(int(amounts[1]))} fee), {spec.verification.tolerance} mode, "
        f"tx {entry.tx_hash}"
    )
    if follow:
        view = _follow(conn, task_id, parse_duration(follow_timeout))
        _print_outcome(view, conn.me)
        if expect is not None and view.outcome != expect:
            raise DeviationError(f"task {task_id} settled {view.outcome}, expected {expect}")


class DeviationError(VeritrainError):
    exit_code = 1


def _submissions(conn: Connection, call: bytes) -> list[JournalEntry]:
    """This account's journaled submissions with the call data ``call`` (the same spec and
    terms), in flight or mined, newest first."""
    assert conn.executor is not None
    pool = conn.deployment.contract(POOL).address.lower()
    return [
        entry
        for entry in reversed(conn.executor.journal.all())
        if entry.intent.startswith("submit/")
        and entry.target.lower() == pool
        and entry.data == call
        and entry.status in ("signed", "sent", "mined")
    ]


def _unsettled_submission(conn: Connection, call: bytes) -> JournalEntry | None:
    """The earlier submission (of ``_submissions``) a rerun follows instead of sending another:
    the newest one still in flight, else the newest mined one whose task is not settled."""
    found = _submissions(conn, call)
    lost = [
        e.block_number
        for e in found
        if e.status == "mined"
        and e.block_number is not None
        and conn.client.receipt(e.tx_hash or "") is None
    ]
    if lost:
        # Mined in a block the chain no longer has (a reorg, a devnet node restarted from an
        # older saved state): followed again as in flight, its same bytes broadcast again
        # (its nonce: never a second task).
        assert conn.executor is not None
        conn.executor.reconcile(recheck_from=min(lost))
        found = _submissions(conn, call)
    for entry in found:
        if entry.in_flight:
            return entry
    views = _task_views(conn) if found else {}
    settled = []
    for entry in found:
        task_id = _submitted_task(conn, entry)
        view = views.get(task_id)
        if view is None or not view.final:
            return entry
        settled.append(view)
    if settled:
        click.echo(
            f"this spec was submitted with these terms before, as task {settled[0].task_id}, "
            f"settled ({settled[0].outcome}): submitting a new task",
            err=True,
        )
    return None


def _say_other_terms(conn: Connection, spec_cid: str, call: bytes) -> None:
    """Say so where a submission of the same spec with other terms is still in flight: both
    are escrowed once mined."""
    assert conn.executor is not None
    prefix = intents.submit(spec_cid, 0).rsplit("/", 1)[0] + "/"
    for entry in conn.executor.journal.by_status(("signed", "sent")):
        if entry.intent.startswith(prefix) and entry.data != call:
            click.echo(
                f"note: an earlier submission of this spec with other terms (tx "
                f"{entry.tx_hash}) is not mined yet either; each mined one is a task (veritrain "
                "cancel takes back an unclaimed one)",
                err=True,
            )


def _say_followed(entry: JournalEntry) -> None:
    if entry.in_flight:
        click.echo(
            f"an earlier submission of this spec with these terms (tx {entry.tx_hash}) is not "
            "mined yet: following it, nothing new sent (--again submits another task)",
            err=True,
        )
    else:
        click.echo(
            f"this spec was submitted with these terms before (tx {entry.tx_hash}, block "
            f"{entry.block_number}) and its task is not settled: nothing new sent (--again "
            "submits another task)",
            err=True,
        )


def _wait_mined(conn: Connection, key: str, timeout: int) -> JournalEntry:
    """Follow the submission of ``key`` until it is mined; a wait that runs out says how to
    follow it on."""
    assert conn.executor is not None
    try:
        return conn.executor.wait(key, timeout=timeout)
    except ChainError:
        entry = conn.executor.journal.get(key)
        if entry is None or not entry.in_flight:
            raise
        raise VeritrainError(
            f"submission {entry.tx_hash} not mined after {timeout} s; it stays journaled: run "
            "the same command again to follow it (nothing is sent twice)"
        ) from None


def _submitted_task(conn: Connection, entry: JournalEntry) -> int:
    """The id of the task the mined submission ``entry`` created (its TaskSubmitted log)."""
    receipt = conn.client.receipt(entry.tx_hash or "")
    pool = conn.deployment.contract(POOL)
    for raw in receipt.logs if receipt is not None else []:
        decoded = pool.decode_log(raw)
        if decoded is not None and decoded.name == "TaskSubmitted":
            return int(decoded.args["taskId"])
    raise VeritrainError(f"submission {entry.tx_hash} was mined but logged no TaskSubmitted")


def _threshold_bound(tolerance: str, given: str | None, pool_max: int) -> int:
    """The τ bound a submission records (binary32 bits): 0 for an exact task; for a tolerant
    one ``given`` (a decimal number), at most the pool's maximum, or that maximum."""
    if tolerance == "exact":
        if given is not None:
            raise VeritrainError("--tau-bound is for tolerant tasks: an exact task has τ = 0")
        return 0
    if given is None:
        return pool_max
    try:
        value = float(given)
    except ValueError:
        raise VeritrainError(f"--tau-bound {given!r} is not a number") from None
    bits = to_bits(value)
    if not (value > 0 and math.isfinite(value)) or bits > pool_max:
        raise VeritrainError(
            f"--tau-bound {given} must be positive and at most the pool's "
            f"maxThreshold {from_bits32(pool_max):g}"
        )
    return bits


def _follow(conn: Connection, task_id: int, timeout: int) -> TaskView:
    """Run the submitter's loop for ``task_id`` until it is settled and nothing is owed."""
    started = time.monotonic()

    def decide(situation: Situation) -> Any:
        own = {task_id: situation.tasks[task_id]} if task_id in situation.tasks else {}
        return submitter_role.decide(dataclasses.replace(situation, tasks=own))

    agent = Agent(conn, "submitter", decide)
    seen: set[tuple[int, int]] = set()

    def done(a: Agent) -> bool:
        view = a.tasks.get(task_id)
        if view is not None:
            for entry in view.timeline:
                if (entry.block, entry.log_index) not in seen:
                    seen.add((entry.block, entry.log_index))
                    click.echo(f"  block {entry.block:>6}  {entry.name:22} {_summary(entry.args)}")
        if timeout and time.monotonic() - started > timeout:
            raise VeritrainError(f"task {task_id} not settled after {timeout} s")
        return view is not None and view.final and view.due_to(conn.me) == 0

    agent.run(until=done)
    view = agent.tasks.get(task_id)
    if view is None or not view.final:
        state = view.status if view is not None else "unknown"
        raise VeritrainError(f"stopped while task {task_id} is {state}; follow it again later")
    return view


def _summary(args: dict[str, Any]) -> str:
    shown = []
    for key, value in args.items():
        if key == "taskId":
            continue
        text = str(value)
        if isinstance(value, str) and text.startswith("0x") and len(text) > 20:
            text = text[:10] + "…"
        shown.append(f"{key}={text}")
    return " ".join(shown)


def _print_outcome(view: TaskView, me: str) -> None:
    click.echo(f"task {view.task_id} settled: {view.outcome}")
    for role, amount in view.payouts.items():
        if amount:
            click.echo(f"  {role:9} {format_eth(amount)}")


@click.command()
@click.argument("task_id", type=int)
@click.option("--no-withdraw", is_flag=True, help="Leave the refund in the pool for now.")
@chain_options
def cancel(
    task_id: int,
    no_withdraw: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    **flags: Any,
) -> None:
    """Cancel an unclaimed task of yours and take the bounty back."""
    config = resolve_config("submitter", config_path, overrides, **flags)
    configure_logging(config.agent.log_format, "warning")
    conn = _connect(config, signer=True)
    view = _one_task(conn, task_id)
    if view.submitter is None or view.submitter.lower() != conn.me.lower():
        raise TaskError(f"task {task_id} was submitted by {view.submitter}, not by {conn.me}")
    if view.status not in ("Submitted", "Open"):
        raise TaskError(f"task {task_id} is {view.status}: only an unclaimed task can be cancelled")
    assert conn.executor is not None
    conn.executor.send_and_wait(
        Intent(intents.cancel(task_id), POOL, "cancel", (task_id,), task_id=task_id)
    )
    click.echo(f"task {task_id} cancelled")
    if not no_withdraw:
        entry = conn.executor.send_and_wait(
            Intent(intents.withdraw([task_id]), POOL, "withdraw", ([task_id],), task_id=task_id)
        )
        click.echo(f"refund withdrawn (tx {entry.tx_hash})")


@click.command()
@click.argument("task_ids", nargs=-1, type=int, required=True)
@chain_options
def withdraw(
    task_ids: tuple[int, ...], config_path: Path | None, overrides: tuple[str, ...], **flags: Any
) -> None:
    """Withdraw what settled tasks owe you (as submitter; agents withdraw by themselves)."""
    config = resolve_config("submitter", config_path, overrides, **flags)
    configure_logging(config.agent.log_format, "warning")
    conn = _connect(config, signer=True)
    views = _task_views(conn)
    owed = [i for i in task_ids if i in views and views[i].due_to(conn.me) > 0]
    if not owed:
        raise TaskError(f"none of the tasks {list(task_ids)} owes anything to {conn.me}")
    total = sum(views[i].due_to(conn.me) for i in owed)
    assert conn.executor is not None
    key = intents.withdraw(owed)
    entry = conn.executor.send_and_wait(Intent(key, POOL, "withdraw", (list(owed),)))
    click.echo(f"withdrew {format_eth(total)} from tasks {owed} (tx {entry.tx_hash})")


# -- reading ---------------------------------------------------------------------------------


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Include settled tasks.")
@chain_options
def tasks(
    as_json: bool,
    show_all: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    **flags: Any,
) -> None:
    """The pool's tasks and their states, from the chain's events."""
    config = resolve_config("submitter", config_path, overrides, **flags)
    conn = _connect(config, signer=False)
    views = [v for v in _task_views(conn).values() if show_all or not v.final]
    if as_json:
        echo_json([_task_json(v) for v in views])
        return
    table = Table(title=f"tasks on {conn.deployment.contract(POOL).address}")
    for column in ("id", "status", "mode", "bounty", "solver", "verifier", "deadline", "outcome"):
        table.add_column(column)
    now = int(time.time())
    for v in views:
        table.add_row(
            str(v.task_id),
            v.status,
            v.mode,
            format_eth(v.bounty),
            _short(v.solver),
            _short(v.verifier),
            "" if v.final else _relative(v.deadline - now),
            "" if v.outcome == "None" else v.outcome,
        )
    Console().print(table)
    if not views:
        click.echo("no tasks" if show_all else "no open tasks (--all shows settled ones)")


@click.group()
def task() -> None:
    """One task."""


@task.command("show")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@chain_options
def task_show(
    task_id: int, as_json: bool, config_path: Path | None, overrides: tuple[str, ...], **flags: Any
) -> None:
    """A task's timeline from its events, its artifacts, verdict and payouts."""
    config = resolve_config("submitter", config_path, overrides, **flags)
    conn = _connect(config, signer=False)
    view = _one_task(conn, task_id)
    times = {e.block: conn.block_time(e.block) for e in view.timeline}
    if as_json:
        document = _task_json(view)
        document["timeline"] = [
            {
                "block": e.block,
                "time": times[e.block],
                "event": e.name,
                "args": e.args,
                "tx": e.tx_hash,
            }
            for e in view.timeline
        ]
        echo_json(document)
        return
    out = Console(soft_wrap=True)
    out.print(f"[bold]task {view.task_id}[/bold]  {view.status}  ({view.mode} mode)")
    out.print(f"  submitter  {view.submitter}   bounty {format_eth(view.bounty)}")
    for role in ("profiler", "solver", "verifier"):
        account = getattr(view, role)
        if account is not None:
            out.print(f"  {role:10} {account}")
    out.print("[bold]artifacts[/bold]")
    for label, value in (
        ("spec", view.spec_cid),
        ("profile", view.profile_cid),
        ("proof", view.proof_cid),
        ("program root", view.program_root),
        ("checkpoint root", view.checkpoint_root),
        ("randomness", view.randomness),
    ):
        if value:
            out.print(f"  {label:16} {value}")
    if view.verdict != "None":
        tau = from_bits32(view.threshold)
        shown = ", ".join(f"{from_bits32(d):.3g}" for d in view.distances)
        out.print(f"[bold]verdict[/bold] {view.verdict} (τ = {tau:g}; distances {shown})")
        if view.extra_segments:
            extra = ", ".join(
                f"{i}: {from_bits32(d):.3g}"
                for i, d in zip(view.extra_segments, view.extra_distances, strict=False)
            )
            out.print(f"  screened segments {extra}")
        for position, root in enumerate(view.trace_roots):
            out.print(f"  trace root {position:3} {root}")
        if view.revealed:
            out.print(
                f"  the verifier revealed its secret ({'forced' if view.forced else 'honest'})"
            )
    out.print("[bold]timeline[/bold]")
    for e in view.timeline:
        stamp = time.strftime("%H:%M:%S", time.localtime(times[e.block]))
        out.print(f"  {stamp}  block {e.block:>6}  {e.name:22} {_summary(e.args)}", highlight=False)
    if view.final:
        out.print(f"[bold]outcome[/bold] {view.outcome}")
        for role, amount in view.payouts.items():
            if amount:
                out.print(f"  {role:9} {format_eth(amount)}")
        for account, slashed in view.penalised:
            out.print(f"  penalised {account}: {format_eth(slashed)} slashed")
        for account, amount in view.withdrawn.items():
            out.print(f"  withdrawn by {account}: {format_eth(amount)}")


def _task_json(v: TaskView) -> dict[str, Any]:
    document = {
        k: str(val) if isinstance(val, Digest) else val
        for k, val in dataclasses.asdict(v).items()
        if k != "timeline"
    }
    document["threshold_value"] = from_bits32(v.threshold)
    document["distance_values"] = [from_bits32(d) for d in v.distances]
    document["penalised"] = [list(p) for p in v.penalised]
    return document


def _short(account: str | None) -> str:
    return "" if account is None else account[:8] + "…" + account[-4:]


def _relative(seconds: int) -> str:
    if seconds < 0:
        return f"passed {-seconds}s ago"
    if seconds < 120:
        return f"in {seconds}s"
    if seconds < 7200:
        return f"in {seconds // 60}m"
    return f"in {seconds // 3600}h"
