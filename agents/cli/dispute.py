"""``veritrain dispute show``: a pinpoint game from the chain, for anyone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from agents.cli.endpoints import reach
from agents.cli.output import echo_json
from agents.cli.settings import chain_options, format_eth
from agents.dispute.driver import GameLog, require_game
from agents.dispute.game import GAME
from agents.dispute.report import game_report


@click.group()
def dispute() -> None:
    """Pinpoint games (PROTOCOL.md §5)."""


@dispute.command("show")
@click.argument("game_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@chain_options
def dispute_show(
    game_id: int, as_json: bool, config_path: Path | None, overrides: tuple[str, ...], **flags: Any
) -> None:
    """A game: parties, clocks, bonds, the interval at each level, the moves, the ruling."""
    chain = reach("verifier", config_path, overrides, flags)
    client, deployment = chain.client, chain.deployment
    game = deployment.contract(GAME)
    require_game(client, game, game_id)
    log = GameLog.read(client, game, game_id, deployment.block)
    bond = int(
        game.decode_output(
            "requiredBond", client.call(game.address, game.encode_call("requiredBond", ()))
        )
    )
    report = game_report(log, client.block("latest").timestamp, bond)
    if as_json:
        echo_json(report)
        return
    blocks: dict[int, int] = {}

    def stamp(block: int) -> str:
        if block not in blocks:
            blocks[block] = client.block(block).timestamp
        return time.strftime("%H:%M:%S", time.localtime(blocks[block]))

    out = Console(soft_wrap=True)
    end = "" if report["phase"] != "RESOLVED" else f": {report['ruling']} ({report['reason']})"
    out.print(f"[bold]game {game_id}[/bold]  {report['phase']}{end}  round {report['round']}")
    first, last = report["steps"]
    out.print(f"  segment {report['segment']}: steps {first} … {last}, program {report['program']}")
    for name, party in report["parties"].items():
        clock = f"{party['time_left']} s left" + (" (owes a move)" if party["owes_move"] else "")
        out.print(
            f"  {name:10} {party['account']}  {clock}, bonds {format_eth(party['bonds'])}",
            highlight=False,
        )
    out.print("[bold]levels[/bold]")
    for level in report["levels"]:
        out.print(f"  {level['level']:8} {level['detail']}", highlight=False)
    out.print("[bold]moves[/bold]")
    for move in report["moves"]:
        who = move["party"] or ""
        out.print(
            f"  {stamp(move['block'])}  block {move['block']:>6}  {who:10} {move['event']:18} "
            f"{move['detail']}",
            highlight=False,
        )
    if report["phase"] == "RESOLVED":
        paid = "paid" if report["paid"] else "not yet withdrawn"
        out.print(f"[bold]ruling[/bold] {report['ruling']} by {report['reason']} (bonds {paid})")
    for cid in report["transcripts"]:
        out.print(f"  transcript {cid}")


@dispute.command("export")
@click.argument("game_id", type=int)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the transcript (JSON).",
)
@click.option("--task", "task_id", type=int, help="The task whose proof the game disputes.")
@click.option("--proof", "proof_cid", help="CID of the proof of learning the game disputes.")
@click.option("--spec", "spec_cid", help="CID of the task's spec (with --start, --claimed).")
@click.option("--start", "start_cid", help="CID of the segment's start state.")
@click.option("--claimed", "claimed_cid", help="CID of the segment's claimed end state.")
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@chain_options
def dispute_export(
    game_id: int,
    out_path: Path,
    task_id: int | None,
    proof_cid: str | None,
    spec_cid: str | None,
    start_cid: str | None,
    claimed_cid: str | None,
    as_json: bool,
    config_path: Path | None,
    overrides: tuple[str, ...],
    **flags: Any,
) -> None:
    """Write game GAME_ID's self-contained transcript: every move as its party signed it, the
    events, the parameters and the CIDs a replay reads (docs/audit.md). The CIDs come from
    the proof the game disputes (--task N, or --proof CID: its spec and the segment's two
    checkpoints) or are given one by one (--spec, --start, --claimed)."""
    from agents.audit.errors import AuditInputError
    from agents.audit.history import read_history
    from agents.audit.transcript import (
        Artifacts,
        artifacts_of_proof,
        export_game,
        write_transcript,
    )

    explicit = (spec_cid, start_cid, claimed_cid)
    chosen = (task_id is not None) + (proof_cid is not None) + any(c is not None for c in explicit)
    if chosen != 1 or (any(c is not None for c in explicit) and None in explicit):
        raise click.UsageError("give --task, --proof, or all of --spec, --start and --claimed")

    chain = reach("verifier", config_path, overrides, flags, unusable=AuditInputError)
    client, deployment = chain.client, chain.deployment
    game = deployment.contract(GAME)
    require_game(client, game, game_id)
    if task_id is not None:
        proof_cid = read_history(client, deployment, task_id).view.proof_cid
        if proof_cid is None:
            raise AuditInputError(f"task {task_id} has no committed proof")
    if proof_cid is not None:
        created = GameLog.read(client, game, game_id, deployment.block).events[0]
        segment = int(created.args["spec"][2]) if created.name == "GameCreated" else -1
        artifacts = artifacts_of_proof(chain.store(), proof_cid, segment)
    else:
        assert spec_cid is not None and start_cid is not None and claimed_cid is not None
        artifacts = Artifacts(spec_cid, start_cid, claimed_cid)
    document = export_game(client, game, game_id, artifacts, from_block=deployment.block)
    write_transcript(document, out_path)
    summary = {
        "game": game_id,
        "out": str(out_path),
        "moves": len(document["moves"]),
        "ruling": document["ruling"],
        "reason": document["reason"],
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"game {game_id}: {summary['moves']} moves, {document['ruling']} "
            f"({document['reason']}) → {out_path}"
        )


@dispute.command("replay")
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--store", "store_location", required=True, help="The store with the artifacts.")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep the segment's replay here (reused by a second replay).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the replay as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write a static HTML page of the game.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def dispute_replay(
    transcript: Path,
    store_location: str,
    cache_dir: Path | None,
    as_json: bool,
    html_path: Path | None,
    quiet: bool,
) -> int:
    """Replay a game's TRANSCRIPT with no chain: check every move against its signature,
    every claim against a replay of the segment from the store's artifacts, and the ruling.
    Exit 0 when the recorded ruling is the one the moves give, 1 when not, 2 when the
    transcript or an artifact is unusable (an edited move or CID is named)."""
    import tempfile

    from agents.audit.game import replay_game
    from agents.audit.game_page import render_game
    from agents.audit.transcript import load_transcript
    from agents.node.progress import ProgressDisplay
    from agents.store import open_store

    document = load_transcript(transcript)
    store = open_store(store_location)
    display = ProgressDisplay("never" if quiet or as_json else "auto")
    with tempfile.TemporaryDirectory(prefix="veritrain-replay-") as scratch:
        try:
            result = replay_game(
                document,
                store,
                cache=cache_dir if cache_dir is not None else Path(scratch),
                progress=lambda name, done, total: display.update(name, done, total),
            )
        finally:
            display.close()
    if html_path is not None:
        html_path.write_text(render_game(result), encoding="utf-8")
    if as_json:
        echo_json(result.to_json(), default=str)
        return result.exit_code
    out = Console(soft_wrap=True, highlight=False)
    out.print(
        f"[bold]replay of game {document['game_id']}[/bold]  chain's ruling "
        f"{document['ruling']} ({document['reason']})"
    )
    for name, honest in result.honest.items():
        lie = result.first_lie.get(name)
        said = "its trace is the replay's" if honest else "its trace is not the replay's"
        out.print(
            f"  {name:10} {result.parties.get(name, '')}  {said}" + (f"; {lie}" if lie else "")
        )
    for step in result.path:
        out.print(f"  {step.level:9} {step.detail}")
    for finding in result.findings:
        if finding.holds:
            continue
        out.print(f"  [red]DIFFERS[/red] {finding.area:8} {finding.claim}")
        out.print(f"           chain:   {finding.chain}")
        out.print(f"           replay:  {finding.audit}")
    for note in result.notes:
        out.print(f"  note: {note}")
    if html_path is not None:
        out.print(f"  page: {html_path}")
    if result.holds:
        out.print(f"[green]the recorded ruling holds: {len(result.findings)} checks[/green]")
    else:
        out.print(
            f"[red]the replay differs from the transcript at {len(result.differences())} point(s)"
        )
    return result.exit_code
