"""``veritrain dispute show``: a pinpoint game from the chain, for anyone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from agents.chain.client import ChainClient
from agents.chain.deployment import load_deployment
from agents.cli.output import echo_json
from agents.cli.settings import chain_options, format_eth, resolve_config
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
    config = resolve_config("verifier", config_path, overrides, **flags)
    deployment = load_deployment(config.require_deployment())
    client = ChainClient(config.chain.rpc_url, timeout=config.chain.rpc_timeout)
    deployment.check(client)
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
