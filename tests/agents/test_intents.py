"""Intent and work keys: one grammar, built and parsed by the same code."""

from __future__ import annotations

import pytest

from agents.roles import intents
from agents.roles.intents import IntentKey, IntentKeyError, action_of


@pytest.mark.parametrize(
    ("key", "text", "action", "tasks"),
    [
        (intents.claim(7), "claim/7", "claim", (7,)),
        (intents.commit(7), "commit/7", "commit", (7,)),
        (intents.profile(7), "profile/7", "profile", (7,)),
        (intents.claim_verification(7, 2), "claim-verification/7/2", "claim-verification", (7,)),
        (intents.reveal_seed(7), "reveal-seed/7/0", "reveal-seed", (7,)),
        (intents.reveal_seed(7, 2), "reveal-seed/7/2", "reveal-seed", (7,)),
        (intents.reveal(7, 1), "reveal/7/1/0", "reveal", (7,)),
        (intents.reveal(7, 1, 3), "reveal/7/1/3", "reveal", (7,)),
        (intents.report(7, 1), "report/7/1", "report", (7,)),
        (intents.timeout(7, "Verifying", 3), "timeout/7/Verifying/3", "timeout", (7,)),
        (intents.withdraw([7]), "withdraw/7", "withdraw", (7,)),
        (intents.withdraw([3, 9, 12]), "withdraw/3,9,12", "withdraw", (3, 9, 12)),
        (intents.cancel(7), "cancel/7", "cancel", (7,)),
        (intents.submit("QmSpec", 17), "submit/QmSpec/17", "submit", ()),
        (intents.train(7), "train/7", "train", (7,)),
        (intents.replay(7), "replay/7", "replay", (7,)),
        (intents.challenge(7, 1, 4), "challenge/7/1/4", "challenge", (7,)),
        (intents.answer(7, 3), "answer/7/3", "answer", (7,)),
        (intents.resolve(7, 3), "resolve/7/3", "resolve", (7,)),
        (intents.withdraw_credit(2), "withdraw-credit/2", "withdraw-credit", ()),
        (intents.opening(7, 5), "opening/7/5", "opening", (7,)),
        (intents.recheck(7, 2), "recheck/7/2", "recheck", (7,)),
    ],
)
def test_keys_are_built_and_parsed_alike(
    key: str, text: str, action: str, tasks: tuple[int, ...]
) -> None:
    assert key == text
    parsed = IntentKey.parse(key)
    assert parsed.action == action and parsed.task_ids == tasks
    assert str(parsed) == key
    assert action_of(key) == action


@pytest.mark.parametrize(
    "text",
    [
        "",
        "claim",
        "claim/",
        "claim/x",
        "claim/7/8",
        "claim/1,2",  # only withdrawals name several tasks
        "claim/-1",
        "report/7",
        "report/7/x",
        "timeout/7/Verifying",
        "fly/7",
        "withdraw/7,",
        "submit/Qm spec/1",
        "claim/7 ",
        "claim/²",
        "challenge/7/1",
        "challenge/7/1/x",
        "challenge/7/1/²",
        "answer/7",
        "resolve/7/x",
        "withdraw-credit/x",
        "opening/7",
        "recheck/7",
        "recheck/7/x",
        "reveal-seed/7",
        "reveal-seed/7/x",
        "reveal/7/1",
        "reveal/7/x/0",
    ],
)
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(IntentKeyError):
        IntentKey.parse(text)
    assert action_of(text) == "other"


def test_a_withdrawal_names_a_task() -> None:
    with pytest.raises(IntentKeyError):
        intents.withdraw([])


def test_game_moves_are_labelled_game() -> None:
    assert action_of("game/3/dissect/0") == "game"
    assert action_of("game/3/withdraw") == "game"
