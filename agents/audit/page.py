"""The audit as one static HTML page: no script, no network, readable on a phone.

The page opens with a banner whose colour is the answer (``HOLDS_COLOUR`` when every finding
holds, ``DIFFERS_COLOUR`` otherwise), then the task's timeline, the sampled segments (a chart
of each segment's reported and replayed distance against τ), every finding, and the payouts.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from agents.audit.findings import Finding
from agents.audit.task import SegmentAudit, TaskAudit
from agents.exact.float32 import from_bits32

HOLDS_COLOUR = "#1b7f3b"
DIFFERS_COLOUR = "#b3261e"

_STYLE = f"""
:root {{ color-scheme: light; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1d1d1f; background: #fafafa; }}
main {{ max-width: 60rem; margin: 0 auto; padding: 0 0.75rem 2rem; }}
.banner {{ color: #fff; padding: 1.1rem 0.75rem; margin: 0 0 1rem; }}
.banner h1 {{ margin: 0; font-size: 1.35rem; }}
.banner p {{ margin: 0.25rem 0 0; }}
.holds {{ background: {HOLDS_COLOUR}; }}
.differs {{ background: {DIFFERS_COLOUR}; }}
h2 {{ font-size: 1.1rem; margin: 1.5rem 0 0.5rem; border-bottom: 1px solid #ddd; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ text-align: left; padding: 0.3rem 0.4rem; border-bottom: 1px solid #e5e5e5;
  vertical-align: top; }}
td.mono, span.mono {{ font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.8rem;
  word-break: break-all; }}
tr.bad td {{ background: #fdecea; }}
.ok {{ color: {HOLDS_COLOUR}; font-weight: 600; }}
.no {{ color: {DIFFERS_COLOUR}; font-weight: 600; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.8rem; margin: 0; }}
dt {{ color: #555; }}
dd {{ margin: 0; word-break: break-all; }}
svg {{ max-width: 100%; height: auto; background: #fff; border: 1px solid #e5e5e5; }}
.legend span {{ display: inline-block; margin-right: 1rem; }}
.swatch {{ display: inline-block; width: 0.8rem; height: 0.8rem; vertical-align: middle;
  margin-right: 0.3rem; }}
"""


def game_pages(audit: TaskAudit, page: Path) -> dict[int, str]:
    """The file name, next to the task's page ``page``, of each replayed game's page."""
    return {
        c.challenge.game: f"{page.stem}-game-{c.challenge.game}.html"
        for c in audit.challenges
        if c.game is not None
    }


def render_task(audit: TaskAudit, pages: dict[int, str] | None = None) -> str:
    """The page of a task audit; ``pages`` names each replayed game's own page (linked)."""
    view = audit.view
    holds = audit.holds
    differences = audit.differences()
    banner_class = "holds" if holds else "differs"
    headline = (
        f"Task {view.task_id}: the chain's ruling holds"
        if holds
        else f"Task {view.task_id}: the audit differs from the chain at {len(differences)} point"
        + ("s" if len(differences) != 1 else "")
    )
    sub = (
        f"{len(audit.findings)} findings checked; outcome {view.outcome}, verdict {view.verdict}"
        if holds
        else "; ".join(f"{d.area}: {d.claim}" for d in differences[:3])
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Audit of task {view.task_id}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<header class="banner {banner_class}" id="answer"><main style="padding:0">',
        f"<h1>{escape(headline)}</h1><p>{escape(sub)}</p></main></header>",
        "<main>",
        _summary(audit),
        _timeline(audit),
        _segments(audit),
        _challenges(audit, pages or {}),
        _findings(audit.findings),
        _payouts(audit),
        _notes(audit.notes),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _summary(audit: TaskAudit) -> str:
    view, h = audit.view, audit.history
    rows: list[tuple[str, str]] = [
        ("status", f"{view.status} ({view.mode} mode)"),
        ("outcome", view.outcome),
        ("pool", f"{h.pool} on chain {h.chain_id}"),
        ("bounty", _eth(view.bounty)),
    ]
    for role, account in view.parties().items():
        rows.append((role, account))
    for label, value in (
        ("spec", view.spec_cid),
        ("profile", view.profile_cid),
        ("proof", view.proof_cid),
        ("checkpoint root", view.checkpoint_root),
        ("program root", view.program_root),
        ("randomness", view.randomness),
    ):
        if value is not None:
            rows.append((label, str(value)))
    for position, root in enumerate(view.trace_roots):
        rows.append((f"trace root {position}", str(root)))
    if view.profiler is not None:
        rows.append(("τ", f"{from_bits32(view.threshold):g}"))
    if audit.spec is not None:
        spec = audit.spec
        rows.append(
            (
                "training",
                f"{spec.name}: {spec.steps} steps, k = {spec.checkpoint_interval}, "
                f"S = {spec.segment_count}, {spec.verification.segments} sampled",
            )
        )
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f"<h2>Task</h2><dl>{items}</dl>"


def _timeline(audit: TaskAudit) -> str:
    rows = []
    for e in audit.view.timeline:
        stamp = audit.history.block_times.get(e.block)
        when = dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%H:%M:%S") if stamp else ""
        rows.append(
            f"<tr><td>{escape(when)}</td><td>{e.block}</td><td>{escape(e.name)}</td>"
            f'<td class="mono">{escape(_args(e.args))}</td></tr>'
        )
    return (
        '<h2>Timeline</h2><div class="scroll"><table id="timeline">'
        "<tr><th>time (UTC)</th><th>block</th><th>event</th><th>facts</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def _args(args: dict[str, Any]) -> str:
    """An event's facts in a line; long hex values shortened (``--json`` has them whole)."""
    shown = []
    for key, value in args.items():
        if key == "taskId":
            continue
        if isinstance(value, list):
            text = "[" + ", ".join(_short(str(v)) for v in value) + "]"
        else:
            text = _short(str(value))
        shown.append(f"{key}={text}")
    return " ".join(shown)


def _short(text: str) -> str:
    if text.startswith("0x") and len(text) > 18:
        return f"{text[:8]}…{text[-4:]}"
    return text


def _segments(audit: TaskAudit) -> str:
    if not audit.segments:
        return ""
    view = audit.view
    tau = from_bits32(view.threshold) if view.profiler is not None else 0.0
    rows = []
    for s in audit.segments:
        bad = s.reported != s.replayed
        rows.append(
            f'<tr class="{"bad" if bad else ""}"><td>{s.index}</td>'
            f"<td>{'sampled' if s.sampled else 'largest update'}</td>"
            f"<td>{_distance(s.reported)}</td><td>{_distance(s.replayed)}</td>"
            f'<td class="{"ok" if s.passed else "no"}">{"pass" if s.passed else "fail"}</td>'
            f'<td class="mono">{escape(s.trace_root or s.replay_root)}</td></tr>'
        )
    return (
        "<h2>Sampled segments</h2>"
        + _distance_chart(audit.segments, tau)
        + '<div class="scroll"><table id="segments"><tr><th>segment</th><th>why</th>'
        "<th>reported distance</th><th>auditor's distance</th><th>replay</th>"
        "<th>auditor's trace root</th></tr>" + "".join(rows) + "</table></div>"
    )


def _distance(bits: int | None) -> str:
    if bits is None:
        return "—"
    return escape(f"{from_bits32(bits):.6g}")


def _distance_chart(segments: list[SegmentAudit], tau: float) -> str:
    """Bars of log10(distance) per segment: reported (dark) and replayed (light), τ as a line."""

    def level(bits: int | None) -> float | None:
        if bits is None:
            return None
        value = from_bits32(bits)
        if math.isnan(value) or math.isinf(value):
            return 1.0
        return max(-12.0, math.log10(value)) if value > 0 else -12.0

    width, height, pad = 640, 220, 36
    n = len(segments)
    slot = (width - 2 * pad) / max(1, n)

    def y(v: float) -> float:
        return pad + (1.0 - (v + 12.0) / 13.0) * (height - 2 * pad)

    shapes = []
    for i, s in enumerate(segments):
        for j, (bits, colour) in enumerate(((s.reported, "#3b4a6b"), (s.replayed, "#9fb3d9"))):
            v = level(bits)
            if v is None:
                continue
            x = pad + i * slot + slot * (0.15 + 0.35 * j)
            top = y(v)
            shapes.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.3:.1f}" '
                f'height="{height - pad - top:.1f}" fill="{colour}"/>'
            )
        shapes.append(
            f'<text x="{pad + (i + 0.5) * slot:.1f}" y="{height - pad + 14}" font-size="11" '
            f'text-anchor="middle">{s.index}</text>'
        )
    if tau > 0:
        ty = y(max(-12.0, math.log10(tau)))
        shapes.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{DIFFERS_COLOUR}" stroke-dasharray="4 3"/>'
            f'<text x="{width - pad}" y="{ty - 4:.1f}" font-size="11" text-anchor="end">τ</text>'
        )
    for tick in (-12, -8, -4, 0):
        shapes.append(
            f'<text x="{pad - 4}" y="{y(tick) + 4:.1f}" font-size="10" '
            f'text-anchor="end">1e{tick}</text>'
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="distance per sampled segment">{"".join(shapes)}</svg>'
        '<p class="legend"><span><i class="swatch" style="background:#3b4a6b"></i>reported '
        'by the verifier</span><span><i class="swatch" style="background:#9fb3d9"></i>'
        "replayed by the auditor</span></p>"
    )


def _challenges(audit: TaskAudit, pages: dict[int, str]) -> str:
    """One row per challenge: what it disputed, its game, the ruling, whether the replay holds."""
    if not audit.challenges:
        return ""
    rows = []
    for ca in audit.challenges:
        c = ca.challenge
        game = str(c.game) if c.game else "—"
        if c.game in pages:
            game = f'<a href="{escape(pages[c.game])}">{c.game}</a>'
        replay = "not replayed"
        if ca.game is not None:
            replay = (
                '<span class="ok">holds</span>'
                if ca.game.holds
                else f'<span class="no">differs at {len(ca.game.differences())}</span>'
            )
        rows.append(
            f'<tr class="{"" if ca.game is None or ca.game.holds else "bad"}">'
            f"<td>{c.challenge_id}</td><td>{escape(c.claim.lower())}</td><td>{c.segment}</td>"
            f'<td class="mono">{escape(_short(c.challenger))}</td><td>{game}</td>'
            f"<td>{escape(c.state)}</td><td>{replay}</td></tr>"
        )
    return (
        '<h2>Challenges and games</h2><div class="scroll"><table id="challenges">'
        "<tr><th>challenge</th><th>disputes</th><th>segment</th><th>challenger</th>"
        "<th>game</th><th>state</th><th>game replayed</th></tr>" + "".join(rows) + "</table></div>"
    )


def _findings(findings: list[Finding]) -> str:
    rows = []
    for f in findings:
        mark = '<span class="ok">holds</span>' if f.holds else '<span class="no">differs</span>'
        rows.append(
            f'<tr class="{"" if f.holds else "bad"}"><td>{mark}</td><td>{escape(f.area)}</td>'
            f'<td>{escape(f.claim)}</td><td class="mono">{escape(f.chain)}</td>'
            f'<td class="mono">{escape(f.audit)}</td></tr>'
        )
    return (
        '<h2>Findings</h2><div class="scroll"><table id="findings"><tr><th></th><th>area</th>'
        "<th>claim</th><th>chain</th><th>auditor</th></tr>" + "".join(rows) + "</table></div>"
    )


def _payouts(audit: TaskAudit) -> str:
    view = audit.view
    if not view.final:
        return ""
    rows = "".join(
        f"<tr><td>{escape(role)}</td><td>{_eth(amount)}</td></tr>"
        for role, amount in view.payouts.items()
    )
    withdrawn = "".join(
        f'<tr><td class="mono">{escape(a)}</td><td>{_eth(v)}</td></tr>'
        for a, v in view.withdrawn.items()
    )
    return f'<h2>Payouts ({escape(view.outcome)})</h2><table id="payouts">{rows}</table>' + (
        f"<h2>Withdrawn</h2><table>{withdrawn}</table>" if withdrawn else ""
    )


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"


def _eth(wei: int) -> str:
    text = f"{Decimal(wei) / 10**18:.6f}".rstrip("0").rstrip(".")
    return escape(f"{text} ETH")
