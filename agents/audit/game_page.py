"""A replayed game as one static HTML page: no script, no network, readable on a phone.

The banner's colour is the answer (the recorded ruling holds, or where it does not); then the
game, the **bisection path** (a bar per level: the steps, the records of the disputed step,
the leaves of its output, the terms of the element, each with the interval the chain kept),
the **disputed op** (its definition from docs/exact.md, both parties' values, the one step's
and the replay's), the segment's **training curve** (the probe loss after each step of the
replay, which is the trace of the party whose root it matches, and of the claimed end
state), every revealed move against the replay, and every finding.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from agents.audit.game import GameAudit, PathStep
from agents.audit.page import _STYLE, DIFFERS_COLOUR, _findings, _notes, _short

REPLAY_COLOUR = "#3b4a6b"
CLAIM_COLOUR = "#c77700"


def render_game(audit: GameAudit) -> str:
    """The page of a game replay."""
    d = audit.document
    game_id = d["game_id"]
    differences = audit.differences()
    if audit.holds:
        headline = f"Game {game_id}: the recorded ruling holds"
        sub = f"{d['ruling']} by {d['reason']}; {len(audit.findings)} checks against the replay"
    else:
        count = len(differences)
        headline = f"Game {game_id}: the replay differs at {count} point" + "s" * (count != 1)
        sub = "; ".join(f.claim for f in differences[:3])
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Replay of game {escape(str(game_id))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<header class="banner {"holds" if audit.holds else "differs"}" id="answer">'
        '<main style="padding:0">',
        f"<h1>{escape(headline)}</h1><p>{escape(sub)}</p></main></header>",
        "<main>",
        _summary(audit),
        _path(audit.path),
        _disputed(audit),
        _curve(audit),
        _revealed(audit),
        _findings(audit.findings),
        _notes(audit.notes),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _summary(audit: GameAudit) -> str:
    d = audit.document
    rows: list[tuple[str, str]] = [
        ("game", f"{d['game_id']} on {d['game']} (chain {d['chain_id']})"),
        ("segment", f"{audit.segment}: steps {audit.steps[0]} … {audit.steps[1]}"),
    ]
    for name, account in audit.parties.items():
        trace = "its trace is the replay's" if audit.honest.get(name) else "its trace is not"
        lie = audit.first_lie.get(name)
        rows.append((name, f"{account}: {trace}" + (f"; first departs at {lie}" if lie else "")))
    rows.append(("chain's ruling", f"{d['ruling']} by {d['reason']}"))
    if audit.expected is not None:
        rows.append(("replay's ruling", f"{audit.expected[0]} by {audit.expected[1]}"))
    params = d["params"]
    rows.append(
        (
            "rules",
            f"{1 << int(params['dissection_bits'])}-ary dissections, one step over at most "
            f"{params.get('max_terms') or '?'} terms, bond {params['bond']} wei per move, "
            f"clock {params['clock']} s (topped up to {params['extension']} s)",
        )
    )
    for name in ("spec", "start", "claimed"):
        rows.append((f"{name} CID", str(d["artifacts"][name]["cid"])))
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    return f'<h2>Game</h2><dl id="game">{items}</dl>'


def _path(path: list[PathStep]) -> str:
    """One row per level: a bar for what the level descends, the kept interval filled."""
    if not path:
        return ""
    width, row, label = 640, 40, 96
    bar = width - label - 12
    shapes = []
    for i, step in enumerate(path):
        y = 8 + i * row
        shapes.append(
            f'<text x="4" y="{y + 16}" font-size="12" font-weight="600">{escape(step.level)}</text>'
        )
        if step.total > 0:
            lo = label + bar * step.lo / step.total
            w = max(2.0, bar * (step.hi - step.lo) / step.total)
            shapes.append(
                f'<rect x="{label}" y="{y + 4}" width="{bar}" height="14" fill="#e6e9f0"/>'
                f'<rect x="{lo:.1f}" y="{y + 4}" width="{w:.1f}" height="14" '
                f'fill="{REPLAY_COLOUR}"/>'
            )
        shapes.append(f'<text x="{label}" y="{y + 32}" font-size="11">{escape(step.detail)}</text>')
    height = 8 + len(path) * row
    return (
        '<h2>Bisection path</h2><svg id="path" viewBox="0 0 '
        f'{width} {height}" role="img" aria-label="the interval kept at each level">'
        + "".join(shapes)
        + "</svg>"
    )


def _disputed(audit: GameAudit) -> str:
    disputed = audit.disputed
    if not disputed:
        return ""
    rows: list[tuple[str, str]] = []
    step = disputed.get("global_step")
    where = (
        f"op {disputed.get('op')} of step {step}"
        if step is not None
        else f"op {disputed.get('op')} of the distance computation"
    )
    rows.append(("op", f"{disputed.get('op_name', '?')}: {where}"))
    definition: dict[str, Any] = disputed.get("definition") or {}
    if definition:
        rows.append(("operands", str(definition.get("operands", ""))))
        if definition.get("attributes"):
            rows.append(("attributes", str(definition["attributes"])))
        rows.append(("definition", str(definition.get("definition", ""))))
        for rule in definition.get("rules", ()):
            rows.append(("arithmetic", str(rule)))
        rows.append(
            ("docs", f"docs/exact.md, “{definition.get('section', '')}” ({definition.get('kind')})")
        )
    if "element" in disputed:
        rows.append(("element", f"{disputed['element']} ({disputed.get('terms', 0)} terms)"))
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    values = ""
    if "element" in disputed:
        cells = [
            ("defender", disputed.get("defender")),
            ("challenger", disputed.get("challenger")),
            ("one step (chain)", disputed.get("one_step")),
            ("one step (replay)", disputed.get("one_step_replay")),
            ("the replay's element", disputed.get("replay")),
        ]
        values = (
            '<div class="scroll"><table id="values"><tr><th>who</th><th>bits</th><th>value</th>'
            "</tr>"
            + "".join(
                f'<tr><td>{escape(who)}</td><td class="mono">{escape(str(bits))}</td>'
                f"<td>{escape(_float(bits))}</td></tr>"
                for who, bits in cells
                if bits is not None
            )
            + "</table></div>"
        )
    return f'<h2>Disputed op</h2><dl id="op">{items}</dl>{values}'


def _float(bits: Any) -> str:
    text = str(bits)
    if not text.startswith("0x"):
        return ""
    from agents.exact.float32 import from_bits32

    return f"{from_bits32(int(text, 16)):.9g}"


def _curve(audit: GameAudit) -> str:
    """The probe loss after each step of the replay (a line) and of the claimed end state."""
    points = audit.curve
    if not points:
        return ""
    losses = [p["replay"] for p in points] + [p["claimed"] for p in points if "claimed" in p]
    finite = [v for v in losses if math.isfinite(v)]
    if not finite:
        return ""
    low, high = float(min(finite)), float(max(finite))
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    width, height, pad = 640, 220, 40
    first, last = int(points[0]["step"]), int(points[-1]["step"])
    span = max(1, last - first)

    def x(step: float) -> float:
        return pad + (step - first) / span * (width - 2 * pad)

    def y(v: float) -> float:
        v = v if math.isfinite(v) else high
        return height - pad - (v - low) / (high - low) * (height - 2 * pad)

    line = " ".join(f"{x(p['step']):.1f},{y(p['replay']):.1f}" for p in points)
    shapes = [f'<polyline points="{line}" fill="none" stroke="{REPLAY_COLOUR}" stroke-width="2"/>']
    for p in points:
        shapes.append(
            f'<circle cx="{x(p["step"]):.1f}" cy="{y(p["replay"]):.1f}" r="3" '
            f'fill="{REPLAY_COLOUR}"/>'
        )
        if "claimed" in p:
            shapes.append(
                f'<rect x="{x(p["step"]) - 5:.1f}" y="{y(p["claimed"]) - 5:.1f}" width="10" '
                f'height="10" fill="none" stroke="{CLAIM_COLOUR}" stroke-width="2"/>'
            )
    disputed = audit.disputed.get("global_step")
    if disputed is not None:
        # Step t of the trace trains from the state after t - 1 steps to the one after t.
        dx = x(disputed + 0.5)
        shapes.append(
            f'<line x1="{dx:.1f}" x2="{dx:.1f}" y1="{pad}" y2="{height - pad}" '
            f'stroke="{DIFFERS_COLOUR}" stroke-dasharray="4 3"/>'
            f'<text x="{dx + 4:.1f}" y="{pad + 10}" font-size="11">disputed step {disputed}</text>'
        )
    for p in points:
        shapes.append(
            f'<text x="{x(p["step"]):.1f}" y="{height - pad + 16}" font-size="10" '
            f'text-anchor="middle">{p["step"]}</text>'
        )
    for v in (low, high):
        shapes.append(
            f'<text x="{pad - 4}" y="{y(v) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{v:.4g}</text>'
        )
    shapes.append(
        f'<text x="{width - pad}" y="{height - 6}" font-size="10" text-anchor="end">'
        "steps trained</text>"
        f'<text x="{pad}" y="{pad - 14}" font-size="10">probe loss</text>'
    )
    honest = [name for name, ok in audit.honest.items() if ok]
    whose = (
        f"the replay (the {' and '.join(honest)}'s trace)"
        if honest
        else "the replay (neither party's trace)"
    )
    liars = [name for name, ok in audit.honest.items() if not ok]
    departs = "; ".join(
        f"the {name}'s trace departs from it: {audit.first_lie.get(name, 'at its root')}"
        for name in liars
    )
    return (
        "<h2>Training curve</h2>"
        f'<svg id="curve" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="probe loss after each step">{"".join(shapes)}</svg>'
        f'<p class="legend"><span><i class="swatch" style="background:{REPLAY_COLOUR}"></i>'
        f"probe loss after each step of {escape(whose)}</span>"
        f'<span><i class="swatch" style="border:2px solid {CLAIM_COLOUR}"></i>'
        "the claimed end state</span></p>" + (f"<p>{escape(departs)}</p>" if departs else "")
    )


def _revealed(audit: GameAudit) -> str:
    if not audit.revealed:
        return ""
    rows = []
    for r in audit.revealed:
        mark = '<span class="ok">replay’s</span>' if r.matches else '<span class="no">not</span>'
        rows.append(
            f'<tr class="{"" if r.matches else "bad"}"><td>{r.move}</td>'
            f"<td>{escape(r.party)}</td><td>{escape(r.what)}</td><td>{mark}</td>"
            f'<td class="mono">{escape(_short(r.detail))}</td></tr>'
        )
    return (
        '<h2>Moves against the replay</h2><div class="scroll"><table id="moves">'
        "<tr><th>move</th><th>party</th><th>revealed</th><th>replay</th><th>detail</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )
