"""``veritrain audit task``: re-execute a task's whole story offline and compare with the chain.

Exit status: 0 when the auditor's own result equals the chain's at every point, 1 when they
differ (each difference is printed), 2 when the input is unusable (an unreachable endpoint,
a task that does not exist, an artifact the store lacks or holds corrupt).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from agents.audit.errors import AuditInputError
from agents.audit.game_page import render_game
from agents.audit.history import read_history
from agents.audit.page import game_pages, render_task
from agents.audit.task import TaskAudit, audit_task
from agents.audit.transcript import Artifacts, export_game
from agents.chain.rpc import RetryPolicy
from agents.cli.endpoints import reach
from agents.cli.output import echo_json
from agents.cli.settings import chain_options
from agents.dispute.game import GAME
from agents.learning.backends import get_backend
from agents.learning.verifier import default_replay_backend
from agents.node.progress import ProgressDisplay
from agents.roles.replay import ObservedReplayer


@click.group()
def audit() -> None:
    """Replay a task offline and check every claim the chain rests on."""


@audit.command("task")
@click.argument("task_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a static HTML report to this file.",
)
@click.option("--threads", type=int, default=None, help="CPU threads of each replay.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Sampled segments replayed side by side.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@chain_options
def audit_task_command(
    task_id: int,
    as_json: bool,
    html_path: Path | None,
    threads: int | None,
    workers: int,
    quiet: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    **flags: Any,
) -> int:
    """Rebuild task TASK_ID from the pool's events and the store, re-verify its proof, and
    check the report, the verdict and the payouts against the chain."""
    chain = reach(
        "submitter",
        config_path,
        overrides,
        flags,
        retry=RetryPolicy(attempts=2, initial_delay=0.25, max_delay=1.0),
        unusable=AuditInputError,
    )
    client, deployment = chain.client, chain.deployment
    history = read_history(client, deployment, task_id)
    store = chain.store()
    exact = history.view.mode == "exact"
    name = "exact" if exact else default_replay_backend()
    options: dict[str, Any] = {} if threads is None else {"threads": threads}
    display = ProgressDisplay("never" if quiet or as_json else "auto")
    expected = min(history.view.segments, history.view.sampled_segments + 2)
    replayer = ObservedReplayer(
        get_backend(name, **options),
        max(1, expected),
        lambda done, total: display.update(f"replaying task {task_id}", done, total),
    )
    game = deployment.contracts.get(GAME)

    def games(game_id: int, artifacts: Artifacts) -> dict[str, Any]:
        assert game is not None
        return export_game(client, game, game_id, artifacts, from_block=deployment.block)

    try:
        with tempfile.TemporaryDirectory(prefix="veritrain-audit-") as scratch:
            result = audit_task(
                history,
                store,
                replayer,
                workers=workers,
                games=games if game is not None else None,
                cache=Path(scratch),
            )
    finally:
        display.close()
    if html_path is not None:
        pages = game_pages(result, html_path)
        html_path.write_text(render_task(result, pages), encoding="utf-8")
        for game_id, page in pages.items():
            audit_of_game = next(c.game for c in result.challenges if c.challenge.game == game_id)
            assert audit_of_game is not None
            (html_path.parent / page).write_text(render_game(audit_of_game), encoding="utf-8")
    if as_json:
        echo_json(result.to_json(), default=str)
    else:
        _print(result, html_path)
    return result.exit_code


def _print(result: TaskAudit, html_path: Path | None) -> None:
    out = Console(soft_wrap=True, highlight=False)
    view = result.view
    out.print(f"[bold]audit of task {view.task_id}[/bold]  {view.status}, {view.outcome}")
    for finding in result.findings:
        mark = "[green]holds[/green]  " if finding.holds else "[red]DIFFERS[/red]"
        out.print(f"  {mark} {finding.area:10} {finding.claim}")
        if not finding.holds:
            out.print(f"           chain:   {finding.chain}")
            out.print(f"           auditor: {finding.audit}")
    if result.segments:
        shown = ", ".join(str(s.index) for s in result.segments)
        out.print(f"  replayed segments {shown}")
    for ca in result.challenges:
        c = ca.challenge
        game = f"game {c.game}" if c.game else "no game"
        replay = ""
        if ca.game is not None:
            replay = "; replay holds" if ca.game.holds else "; replay DIFFERS"
        out.print(
            f"  challenge {c.challenge_id}: {c.claim.lower()} of segment {c.segment} by "
            f"{c.challenger}, {game}, {c.state}{replay}"
        )
    for note in result.notes:
        out.print(f"  note: {note}")
    if html_path is not None:
        out.print(f"  report: {html_path}")
    if result.holds:
        out.print("[green]the chain's ruling holds at every point[/green]")
    else:
        out.print(f"[red]the audit differs from the chain at {len(result.differences())} point(s)")
