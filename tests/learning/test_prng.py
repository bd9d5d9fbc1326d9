"""The task PRNG, data order and initialization, checked against the documented procedure."""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pytest

from agents.learning.initialization import initial_state
from agents.learning.layout import state_shapes
from agents.learning.order import batch_indices
from agents.learning.prng import Stream, permutation, symmetric_float32, words
from agents.learning.spec import TaskSpec, parse_spec
from tests.learning.conftest import spec_dict


def doc_words(seed: int, label: str, count: int) -> list[int]:
    """The documented word stream, written independently of the implementation."""
    out: list[int] = []
    j = 0
    while len(out) < count:
        block = hashlib.sha256(
            b"veritrain/prng/1"
            + struct.pack(">Q", seed)
            + struct.pack(">I", len(label.encode()))
            + label.encode()
            + struct.pack(">Q", j)
        ).digest()
        out += list(struct.unpack(">4Q", block))
        j += 1
    return out[:count]


@pytest.mark.parametrize(
    ("seed", "label"), [(0, ""), (7, "init/layers.0.weight"), (2**64 - 1, "é")]
)
def test_words_follow_the_documented_stream(seed: int, label: str) -> None:
    assert words(seed, label, 23).tolist() == doc_words(seed, label, 23)


def test_stream_reads_words_in_order_across_refills() -> None:
    stream = Stream(3, "x")
    got = stream.take(5) + stream.take(300) + stream.take(1)
    assert got == doc_words(3, "x", 306)


def test_below_rejects_words_past_the_last_full_range() -> None:
    # n = 2**63 + 1: about half of all words fall past the last full range and are rejected.
    n = 2**63 + 1
    stream, reference = Stream(1, "reject"), doc_words(1, "reject", 64)
    limit = 2**64 - 2**64 % n
    expected = [x % n for x in reference if x < limit]
    assert len(expected) < 60  # the test needs rejections to mean anything
    assert [stream.below(n) for _ in range(len(expected))] == expected


def doc_permutation(seed: int, label: str, n: int) -> list[int]:
    """The documented Fisher–Yates over the documented stream, written independently."""
    reference = list(range(n))
    draws = iter(doc_words(seed, label, 2 * n + 2))
    for i in range(n - 1, 0, -1):
        while True:
            x = next(draws)
            if x < 2**64 - 2**64 % (i + 1):
                break
        j = x % (i + 1)
        reference[i], reference[j] = reference[j], reference[i]
    return reference


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1797])
def test_permutation_is_the_documented_fisher_yates(n: int) -> None:
    assert permutation(9, "order/epoch/0", n).tolist() == doc_permutation(9, "order/epoch/0", n)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("count", [1, 5, 255, 1796])
def test_many_words_are_each_labels_documented_stream(
    monkeypatch: pytest.MonkeyPatch, compiled: bool, count: int
) -> None:
    # Labels of several lengths (streams of one length are hashed together), one of them
    # too long for its block and padding to fit 64 bytes, one empty.
    import agents.learning.prng as prng

    if not compiled:
        monkeypatch.setattr(prng, "engine", lambda: None)
    labels = [f"order/epoch/{e}" for e in (0, 7, 9, 10, 99, 100, 12345)]
    labels += ["", "é", "a label longer than one block's room", "order/epoch/7"]
    got = prng.many_words(3, labels, count)
    assert got.shape == (len(labels), count) and got.dtype == np.uint64
    for row, label in enumerate(labels):
        assert got[row].tolist() == doc_words(3, label, count), label
    assert prng.many_words(3, [], count).shape == (0, count)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1797])
def test_permutations_are_each_labels_documented_permutation(n: int) -> None:
    import agents.learning.prng as prng

    labels = [f"order/epoch/{e}" for e in [*range(12), 99, 100, 1000]]
    got = prng.permutations(20240917, labels, n)
    assert got.shape == (len(labels), n) and got.dtype == np.int64
    for row, label in enumerate(labels):
        assert got[row].tolist() == doc_permutation(20240917, label, n), label


def test_permutations_fall_back_word_by_word_for_the_rows_with_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agents.learning.prng as prng

    labels = ["order/epoch/0", "order/epoch/1", "order/epoch/2"]
    real = prng.many_words

    def rejecting(seed: int, labels: list[str], count: int) -> np.ndarray:
        out = real(seed, labels, count).copy()
        out[1, 3] = np.uint64(2**64 - 1)  # past the last full range of any bound but 1
        return out

    monkeypatch.setattr(prng, "many_words", rejecting)
    got = prng.permutations(9, labels, 50)
    for row, label in enumerate(labels):
        assert got[row].tolist() == doc_permutation(9, label, 50), label


def test_permutations_are_uniform_enough() -> None:
    # Position of element 0 over many labels: chi-square with 4 degrees of freedom.
    counts = np.zeros(5)
    for trial in range(2000):
        counts[int(np.argmin(permutation(1, f"t/{trial}", 5)))] += 1
    chi2 = float(((counts - 400) ** 2 / 400).sum())
    assert chi2 < 25.0  # p < 1e-4 under uniformity


def test_symmetric_floats_are_exact_grid_values() -> None:
    raw = doc_words(4, "f", 1000)
    got = symmetric_float32(4, "f", 1000, 0.3)
    assert got.dtype == np.float32
    for x, value in zip(raw, got.tolist(), strict=True):
        t = ((x >> 40) - 2**23) / 2**23
        assert value == float(np.float32(np.float32(0.3) * np.float32(t)))
    assert got.min() >= -0.3 and got.max() < 0.3


def test_batches_straddle_epochs_in_order() -> None:
    e0, e1 = permutation(2, "order/epoch/0", 10), permutation(2, "order/epoch/1", 10)
    rows = batch_indices(2, 10, 4, 2, 2)  # positions 8..15
    assert rows.tolist() == [[*e0[8:10], *e1[0:2]], e1[2:6].tolist()]


def doc_batches(seed: int, samples: int, batch_size: int, first: int, count: int) -> list[int]:
    """Positions ``first·B …`` of the concatenated documented epochs."""
    start, stop = first * batch_size, (first + count) * batch_size
    sequence: list[int] = []
    for epoch in range(start // samples, (stop - 1) // samples + 1 if stop > start else 0):
        sequence += doc_permutation(seed, f"order/epoch/{epoch}", samples)
    offset = (start // samples) * samples
    return sequence[start - offset : stop - offset]


def test_batches_of_many_epochs_are_the_documented_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # Spans of one step to hundreds of epochs, computed in slabs of a few epochs (the
    # limit lowered), in an order that meets kept epochs, computed ones and both, of two
    # seeds and two dataset sizes interleaved.
    import agents.learning.order as order

    monkeypatch.setattr(order, "_SLAB_SAMPLES", 100)
    order._kept.clear()
    spans = [
        (7, 37, 5, 0, 1),
        (7, 37, 5, 3, 400),
        (8, 37, 5, 3, 400),
        (7, 37, 5, 390, 20),
        (7, 10, 4, 2, 2),
        (7, 37, 5, 0, 0),
        (8, 1, 3, 5, 7),
        (7, 37, 5, 395, 30),
        (2**64 - 1, 37, 40, 11, 9),
        (7, 37, 5, 3, 400),
    ]
    for seed, samples, batch_size, first, count in spans:
        got = batch_indices(seed, samples, batch_size, first, count)
        assert got.shape == (count, batch_size) and got.dtype == np.int64
        want = doc_batches(seed, samples, batch_size, first, count)
        assert got.reshape(-1).tolist() == want, (seed, samples, batch_size, first, count)
    assert len(order._kept) <= order._KEEP


def _spec(**overrides: object) -> TaskSpec:
    return parse_spec(spec_dict(**overrides))


def test_initial_state_follows_the_documented_rule() -> None:
    spec = _spec(model={"kind": "mlp", "inputs": 6, "hidden": [8], "outputs": 3})
    state = initial_state(spec)
    assert list(state) == list(state_shapes(spec))
    bound = np.float32(1 / math.sqrt(6))
    expected = symmetric_float32(spec.seed, "init/layers.0.weight", 48, float(bound))
    assert np.array_equal(state["param/layers.0.weight"].ravel(), expected)
    assert float(state["step"]) == 0.0
    assert not any(state[n].any() for n in state if n.startswith("opt/"))


def test_layer_norm_starts_at_one_and_zero_and_seed_changes_draws() -> None:
    model = {"kind": "transformer", "vocab": 28, "context": 4, "width": 8, "heads": 2}
    model |= {"layers": 1, "ff": 8}
    spec = _spec(model=model, dataset={"cid": "Qm" + "b" * 44})
    state = initial_state(spec)
    assert (state["param/norm.weight"] == 1).all() and (state["param/norm.bias"] == 0).all()
    other = initial_state(spec.model_copy(update={"seed": spec.seed + 1}))
    assert not np.array_equal(state["param/tokens.weight"], other["param/tokens.weight"])
    assert np.array_equal(state["param/tokens.weight"], initial_state(spec)["param/tokens.weight"])


def test_permutation_falls_back_to_word_by_word_on_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import agents.learning.prng as prng

    expected = permutation(9, "order/epoch/0", 50)
    real = prng.words

    def rejecting(seed: int, label: str, count: int, first_block: int = 0) -> np.ndarray:
        out = real(seed, label, count, first_block).copy()
        out[3] = np.uint64(2**64 - 1)  # past the last full range of any bound but 1
        return out

    monkeypatch.setattr(prng, "words", rejecting)
    assert permutation(9, "order/epoch/0", 50).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "label", ["", "order/epoch/12", "a label longer than one sha256 block " * 3]
)
@pytest.mark.parametrize(("count", "first_block"), [(255, 0), (256, 0), (257, 3), (7188, 1)])
def test_words_hashed_in_one_call_are_the_documented_stream(
    monkeypatch: pytest.MonkeyPatch, label: str, count: int, first_block: int
) -> None:
    # From ENGINE_MIN_BLOCKS blocks on, the compiled engine (where there is one) hashes every
    # block at once; the hashlib loop below that, and where there is none.
    import agents.learning.prng as prng

    assert -(-count // 4) >= prng.ENGINE_MIN_BLOCKS
    skipped = doc_words(5, label, 4 * first_block + count)[4 * first_block :]
    assert words(5, label, count, first_block).tolist() == skipped
    monkeypatch.setattr(prng, "engine", lambda: None)
    assert words(5, label, count, first_block).tolist() == skipped


def test_the_compiled_shuffle_is_the_list_shuffle() -> None:
    import agents.learning.prng as prng

    rng = np.random.default_rng(0)
    for n in (2, 3, 17, 1797):
        picks = np.array([rng.integers(0, i + 1) for i in range(n - 1, 0, -1)], dtype=np.int64)
        expected = prng._shuffle_list(picks)
        assert prng._shuffler()(picks).tolist() == expected.tolist()
        assert prng._shuffle(picks).tolist() == expected.tolist()
