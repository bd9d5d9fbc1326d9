"""The audit's HTML page, rendered by headless Chromium: the answer's colour edge to edge at a
phone's width, every finding listed, nothing fetched or run, hostile text shown as text."""

from __future__ import annotations

import re
from pathlib import Path

from agents.audit.history import ChainHistory
from agents.audit.page import DIFFERS_COLOUR, HOLDS_COLOUR, render_task
from agents.audit.task import SegmentAudit, TaskAudit
from agents.chain.abi import DecodedLog
from agents.exact.float32 import to_bits
from agents.roles.tasks import fold

from .browser import dump_dom, screenshot, share_of

SOLVER = "0x" + "11" * 20
HOSTILE = '<script>document.title="owned"</script><img src="http://example.invalid/x">'


def _event(name: str, block: int, **args: object) -> DecodedLog:
    return DecodedLog(
        contract="TaskPool",
        name=name,
        args={"taskId": 7, **args},
        address="0x" + "22" * 20,
        block_number=block,
        block_hash="0x" + "33" * 32,
        log_index=0,
        tx_hash="0x" + "44" * 32,
    )


def _audit(holds: bool, spec_cid: str = "QmSpec") -> TaskAudit:
    events = [
        _event(
            "TaskSubmitted",
            10,
            submitter=SOLVER,
            mode=0,
            bounty=10**18,
            protocolFee=10**16,
            specHash="0x" + "55" * 32,
            programRoot="0x" + "66" * 32,
            segments=10,
            sampledSegments=4,
            thresholdBound=0,
            specCid=spec_cid,
            trainingWindow=3600,
            deadline=2000,
        ),
        _event("TaskClaimed", 11, solver=SOLVER, stake=2 * 10**18, deadline=3000),
    ]
    history = ChainHistory(
        task_id=7,
        pool="0x" + "22" * 20,
        chain_id=31337,
        view=fold(7, events),
        events=events,
        raw_logs=[],
        folded_topics=set(),
        stored_record=bytes(32),
        params={"minSampledSegments": 4},
        block_times={10: 1_700_000_000, 11: 1_700_000_012},
    )
    audit = TaskAudit(history)
    audit.add("events", "the record is the pool's", "0x00", "0x00", True)
    audit.add("report", "the distances are the replays'", "[0x0]", "[0x3f800000]", holds)
    audit.segments = [
        SegmentAudit(i, True, 0, 0 if holds else to_bits(0.5), "aa", "bb", "cc", holds)
        for i in (0, 3, 8)
    ]
    return audit


def test_the_banner_shows_the_answer_at_a_phones_width(tmp_path: Path) -> None:
    for holds, colour, other in (
        (True, HOLDS_COLOUR, DIFFERS_COLOUR),
        (False, DIFFERS_COLOUR, HOLDS_COLOUR),
    ):
        page = tmp_path / f"{holds}.html"
        page.write_text(render_task(_audit(holds)), encoding="utf-8")
        pixels = screenshot(page, tmp_path / f"{holds}.png", 390, 844)
        assert pixels.shape[1] == 390
        band = pixels[:40]
        assert share_of(band, colour) > 0.8
        assert share_of(band, other) == 0.0
        # Below the banner the page is mostly the background, with text on it.
        rest = pixels[120:]
        assert share_of(rest, "#fafafa") > 0.5 and (rest.sum(axis=-1) < 300).any()


def test_every_finding_and_segment_is_in_the_rendered_page(tmp_path: Path) -> None:
    audit = _audit(False)
    page = tmp_path / "report.html"
    page.write_text(render_task(audit), encoding="utf-8")
    dom = dump_dom(page)
    findings = re.search(r'<table id="findings">(.*?)</table>', dom, re.S)
    assert findings is not None
    rows = re.findall(r"<tr[ >]", findings.group(1))
    assert len(rows) == 1 + len(audit.findings)
    assert findings.group(1).count('class="bad"') == 1
    segments = re.search(r'<table id="segments">(.*?)</table>', dom, re.S)
    assert segments is not None and len(re.findall(r"<tr[ >]", segments.group(1))) == 4
    assert dom.count("<rect") == 2 * len(audit.segments)  # reported and replayed bars


def test_the_page_is_static_and_shows_hostile_text_as_text(tmp_path: Path) -> None:
    html = render_task(_audit(True, spec_cid=HOSTILE))
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?[a-z]+:""", html, re.I)
    page = tmp_path / "hostile.html"
    page.write_text(html, encoding="utf-8")
    dom = dump_dom(page)
    assert "<title>Audit of task 7</title>" in dom
    assert "<script" not in dom and "<img" not in dom
    assert "&lt;script&gt;" in dom


def test_challenges_are_listed_and_their_games_linked(tmp_path: Path) -> None:
    from agents.audit.disputes import ChallengeAudit
    from agents.audit.page import game_pages
    from agents.commitment import Root
    from agents.roles.tasks import ChallengeView

    audit = _audit(True)
    for cid, game in ((1, 4), (2, 0)):
        challenge = ChallengeView(
            challenge_id=cid,
            challenger=SOLVER,
            claim="Report" if game else "Proof",
            segment=3,
            position=1,
            defender_trace=Root.parse("0x" + "11" * 32),
            challenger_trace=Root.parse("0x" + "22" * 32),
            game=game,
            deadline=0,
            round=0,
            state="Upheld",
        )
        audit.challenges.append(ChallengeAudit(challenge))
    page = tmp_path / "report.html"
    # Only replayed games get a page; none was replayed here.
    assert game_pages(audit, page) == {}
    page.write_text(render_task(audit, {4: "report-game-4.html"}), encoding="utf-8")
    dom = dump_dom(page)
    table = re.search(r'<table id="challenges">(.*?)</table>', dom, re.S)
    assert table is not None and len(re.findall(r"<tr[ >]", table.group(1))) == 3
    assert '<a href="report-game-4.html">4</a>' in table.group(1)
