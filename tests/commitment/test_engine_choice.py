"""``hashing.engine()``: the fastest of the engines this CPU offers, on a short trial that
noise on a busy machine does not mislead and a very slow candidate does not drag out."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agents.commitment import hashing


class _Timed(hashing.Sha256Engine):
    """An engine that only takes time: ``seconds[k]`` for its k-th ``leaves_root`` (the
    last one for every later call)."""

    def __init__(self, name: str, *seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self.calls = 0

    def leaves_root(self, data: np.ndarray) -> bytes:
        time.sleep(self.seconds[min(self.calls, len(self.seconds) - 1)])
        self.calls += 1
        return bytes(32)

    def agrees_with_hashlib(self) -> bool:
        return True


@pytest.fixture
def fresh_engine(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.delenv("VERITRAIN_HASH_ENGINE", raising=False)
    hashing.engine.cache_clear()
    yield hashing.engine
    hashing.engine.cache_clear()


def test_libcrypto_is_weighed_against_the_sha_extensions(
    monkeypatch: pytest.MonkeyPatch, fresh_engine: object
) -> None:
    # A CPU with SHA extensions and no AVX-512, where the SHA-extension engine is the slower.
    engines = {"shani": _Timed("shani", 0.02), "libcrypto": _Timed("libcrypto", 0.002)}
    monkeypatch.setattr(hashing, "_make_engine", engines.get)
    monkeypatch.setattr(hashing, "_has_feature", lambda feature: feature == "sha")
    assert hashing.engine() is engines["libcrypto"]


def test_every_offered_engine_is_timed_and_the_fastest_taken(
    monkeypatch: pytest.MonkeyPatch, fresh_engine: object
) -> None:
    engines = {
        "shani": _Timed("shani", 0.004),
        "vector16": _Timed("vector16", 0.001),
        "libcrypto": _Timed("libcrypto", 0.003),
    }
    monkeypatch.setattr(hashing, "_make_engine", engines.get)
    monkeypatch.setattr(hashing, "_has_feature", lambda feature: feature in ("sha", "avx512f"))
    assert hashing.engine() is engines["vector16"]
    assert all(e.calls == 1 + hashing._TRIAL_ROUNDS for e in engines.values())


def test_a_slow_first_round_does_not_decide() -> None:
    # Other work on the machine slows one round of the truly faster engine.
    noisy = _Timed("noisy", 0.0, 0.03, 0.001)
    steady = _Timed("steady", 0.004)
    assert hashing.fastest([steady, noisy]) is noisy


def test_a_hopeless_candidate_is_timed_once() -> None:
    slow = _Timed("slow", 0.05)
    quick = _Timed("quick", 0.001)
    assert hashing.fastest([slow, quick]) is quick
    assert (slow.calls, quick.calls) == (2, 1 + hashing._TRIAL_ROUNDS)
    # One candidate is not timed at all.
    alone = _Timed("alone", 0.05)
    assert hashing.fastest([alone]) is alone
    assert alone.calls == 0
