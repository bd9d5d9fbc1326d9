"""Commitments (PROTOCOL.md §4): the worked examples of docs/commitments.md, agreement
with an independent implementation, Merkle proofs, bit flips, and the parallel hashing
engines against hashlib."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import torch

from agents import commitment
from agents.commitment import (
    LEAF_BYTES,
    LeafProof,
    hashing,
    leaf_hashes,
    merkle_proof,
    merkle_root,
    merkle_roots,
    row_roots,
    state_root,
    tensor_leaf_proof,
    tensor_root,
    verify_merkle_proof,
)
from tests.commitment import examples, independent


@pytest.mark.parametrize("name", sorted(examples.ROOTS))
def test_worked_examples(name: str) -> None:
    tensor = examples.tensors()[name]
    assert tensor_root(tensor).hex() == examples.ROOTS[name]
    assert independent.tensor_root(tensor).hex() == examples.ROOTS[name]


def test_worked_state_example() -> None:
    assert state_root(examples.state()).hex() == examples.STATE_ROOT
    assert independent.state_root(examples.state()).hex() == examples.STATE_ROOT


SIZES = [0, 1, 255, 256, 257, 512, 1000, 256 * 63, 256 * 64, 256 * 64 + 1, 256 * 97 + 5, 256 * 300]
SIZES += [256 * 8, 256 * 9 - 1, 256 * 16, 256 * 16 + 1, 256 * 17, 256 * 1024 + 3]


@pytest.mark.parametrize("numel", SIZES)
def test_matches_independent_implementation(numel: int) -> None:
    values = np.random.default_rng(numel).standard_normal(numel).astype(np.float32)
    want = independent.tensor_root(values)
    assert tensor_root(values) == want
    assert tensor_root(values, fast=False) == want
    assert tensor_root(torch.from_numpy(values)) == want


@pytest.mark.parametrize("width", [0, 1, 128, 255, 256, 257, 1000])
@pytest.mark.parametrize("count", [0, 1, 3])
def test_row_roots_are_the_rows_tensor_roots(width: int, count: int) -> None:
    values = np.random.default_rng(width + count).standard_normal((count, width)).astype("f4")
    assert row_roots(values) == [independent.tensor_root(row) for row in values]
    assert row_roots(values[:, ::-1]) == [tensor_root(row.copy()) for row in values[:, ::-1]]
    with pytest.raises(ValueError, match="2-D"):
        row_roots(values.reshape(-1))


def test_shape_is_committed() -> None:
    values = np.arange(12, dtype=np.float32)
    roots = {tensor_root(values.reshape(s)) for s in [(12,), (3, 4), (4, 3), (1, 12), (12, 1)]}
    assert len(roots) == 5
    assert tensor_root(np.array(5.0, np.float32)) != tensor_root(np.array([5.0], np.float32))


def test_non_float32_is_refused() -> None:
    with pytest.raises(TypeError, match="float32"):
        tensor_root(np.zeros(3, dtype=np.float64))


@pytest.mark.parametrize("numel", [1, 300, 256 * 70 + 3])
def test_every_flipped_bit_position_class_changes_the_root(numel: int) -> None:
    rng = np.random.default_rng(numel)
    values = rng.standard_normal(numel).astype(np.float32)
    root = tensor_root(values)
    raw = values.view(np.uint8)
    for position in sorted({0, raw.size - 1, *rng.integers(0, raw.size, 40).tolist()}):
        for bit in (0, 7, int(rng.integers(0, 8))):
            flipped = raw.copy()
            flipped[position] ^= 1 << bit
            assert tensor_root(flipped.view(np.float32)) != root, (position, bit)


def test_state_root_commits_tensors_in_name_order() -> None:
    state = examples.state()
    root = state_root(state)
    # Names are not committed, their order is: the spec fixes the layout.
    renamed = {("param/v" if k == "param/w" else k): v for k, v in state.items()}
    assert state_root(renamed) == root
    reordered = {("a/w" if k == "param/w" else k): v for k, v in state.items()}
    assert state_root(reordered) != root
    for name in state:
        changed = dict(state)
        flipped = state[name].copy()
        flipped.reshape(-1).view(np.uint32)[0] ^= 1
        changed[name] = flipped
        assert state_root(changed) != root


@pytest.mark.parametrize("numel", [1, 256, 700, 256 * 9, 256 * 70 + 1])
def test_leaf_proofs_verify(numel: int) -> None:
    rng = np.random.default_rng(numel + 1)
    values = rng.standard_normal(numel).astype(np.float32)
    root = tensor_root(values)
    leaves = commitment.leaf_count(numel)
    for index in sorted({0, leaves - 1, *rng.integers(0, leaves, 5).tolist()}):
        proof = tensor_leaf_proof(values, index)
        assert proof.verify(root)
        bad_leaf = bytearray(proof.leaf)
        bad_leaf[int(rng.integers(0, LEAF_BYTES))] ^= 1
        assert not LeafProof(proof.shape, index, bytes(bad_leaf), proof.siblings).verify(root)
        if proof.siblings:
            bad = list(proof.siblings)
            bad[0] = bytes(32)
            assert not LeafProof(proof.shape, index, proof.leaf, tuple(bad)).verify(root)
            wrong_index = (index + 1) % leaves
            if wrong_index != index:
                assert not LeafProof(proof.shape, wrong_index, proof.leaf, proof.siblings).verify(
                    root
                )


def test_merkle_proofs_over_hashes() -> None:
    rng = np.random.default_rng(9)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(37)]
    root = merkle_root(hashes)
    for index in range(37):
        assert verify_merkle_proof(hashes[index], index, merkle_proof(hashes, index), root)
        assert not verify_merkle_proof(hashes[index], index ^ 1, merkle_proof(hashes, index), root)
    with pytest.raises(IndexError):
        merkle_proof(hashes, 37)


def test_parallel_tree_matches_reference() -> None:
    rng = np.random.default_rng(10)
    for count in (64, 65, 127, 128, 1000, 4097):
        level = rng.integers(0, 256, (count, 32), dtype=np.uint8)
        assert (
            merkle_root(level)
            == merkle_root(level, fast=False)
            == independent.merkle([bytes(h) for h in level])
        )


ENGINES = ("shani", "vector16", "libcrypto")


@pytest.mark.parametrize("name", ENGINES)
def test_engines_match_hashlib(name: str) -> None:
    engine = hashing._make_engine(name)
    if engine is None:
        pytest.skip(f"engine {name} is not available here")
    assert engine.agrees_with_hashlib()
    rng = np.random.default_rng(11)
    # 1100 leaves of 1024 bytes are over PARALLEL_MIN_BYTES: the parallel build hashes them.
    assert hashing.PARALLEL_MIN_BYTES <= 1100 // 16 * 16 * 1024
    for size in (64, 1024):
        for count in (1, 16, 33, 1000, 1100):
            data = rng.integers(0, 256, size * count, dtype=np.uint8)
            got = engine.hash_many(data, size, count)
            for i in range(count):
                want = independent.sha(data[i * size : (i + 1) * size].tobytes())
                assert bytes(got[i]) == want
    leaves = np.random.default_rng(12).standard_normal(256 * 100 + 7).astype(np.float32)
    reference = leaf_hashes(leaves, fast=False)
    flat = leaves[: 256 * 100].view(np.uint8)
    assert (engine.hash_many(flat, 1024, 100) == reference[:100]).all()


def test_engine_in_use_is_checked() -> None:
    engine = hashing.engine()
    assert engine is None or engine.agrees_with_hashlib()


def _engines() -> list[Any]:
    """Every engine that loads here, and the vector engine as it runs without libcrypto."""
    found = []
    for name in ENGINES:
        engine = hashing._make_engine(name)
        if engine is not None:
            found.append(pytest.param(name, engine, id=name))
    vector = hashing._make_engine("vector16")
    if vector is not None:
        vector._scalar = hashing._NO_SCALAR
        found.append(pytest.param("vector16-alone", vector, id="vector16-alone"))
    return found


# Leaf counts around the group of sixteen, the scalar/vector split of a partial group
# (nine), powers of two, and past the size where leaves are hashed on every core.
TREE_BYTES = sorted(
    {0, 1, 4, 1023, 1024, 1025}
    | {1024 * n + d for n in (7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65) for d in (-1, 0, 1)}
    | {1024 * 1024, 1024 * 1024 + 4, 3 * 1024 * 1024 - 4}
)


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_trees_match_independent(name: str, engine: hashing.Sha256Engine) -> None:
    rng = np.random.default_rng(13)
    for nbytes in TREE_BYTES:
        data = rng.integers(0, 256, nbytes, dtype=np.uint8)
        raw = data.tobytes()
        leaves = [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)] or [b""]
        want = independent.merkle([independent.sha(c + bytes(LEAF_BYTES - len(c))) for c in leaves])
        assert engine.leaves_root(data) == want, (name, nbytes)
    for count in [*range(1, 70), 1000, 1025]:
        hashes = rng.integers(0, 256, (count, 32), dtype=np.uint8)
        assert engine.tree_root(hashes) == independent.merkle([bytes(h) for h in hashes]), count
    with pytest.raises(ValueError, match="n >= 1"):
        engine.tree_root(np.zeros((0, 32), dtype=np.uint8))


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_batches_match_independent(name: str, engine: hashing.Sha256Engine) -> None:
    # A batch of buffers of mixed sizes, as a traced step hashes them: empty, partial and
    # whole leaves, odd and even leaf counts, in an order that mixes them, and batches of
    # one and of an odd number of buffers.
    rng = np.random.default_rng(16)
    sizes = [0, 1, 4, 1023, 1024, 1025, 2048, 3 * 1024 + 5, 40, 9 * 1024, 17 * 1024 - 4, 7]
    buffers = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]
    for batch in (buffers, buffers[::-1], buffers[:1], buffers[2:5], buffers[1:8]):
        got = engine.many_leaves_roots(batch)
        assert got.shape == (len(batch), 32)
        for row, data in zip(got, batch, strict=True):
            raw = data.tobytes()
            chunks = [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)] or [b""]
            want = independent.merkle(
                [independent.sha(c + bytes(LEAF_BYTES - len(c))) for c in chunks]
            )
            assert bytes(row) == want, (name, data.size)
    assert engine.many_leaves_roots([]).shape == (0, 32)


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_tables_of_buffers_match_the_buffers(
    name: str, engine: hashing.Sha256Engine
) -> None:
    # The table form (addresses and sizes, as the tracer hands a group to a hashing thread):
    # slices of one table, in any split, give the rows of the whole.
    rng = np.random.default_rng(17)
    sizes = [0, 1, 1024, 1025, 5000, 3 * 1024, 11, 64 * 1024 + 3]
    buffers = [rng.integers(0, 256, n, dtype=np.uint8) for n in sizes]
    addresses = np.array([b.ctypes.data for b in buffers], dtype=np.int64)
    lengths = np.array(sizes, dtype=np.int64)
    whole = engine.many_leaves_roots(buffers)
    assert np.array_equal(engine.leaves_roots_at(addresses, lengths), whole)
    for cut in range(len(sizes) + 1):
        parts = [
            engine.leaves_roots_at(addresses[:cut], lengths[:cut]),
            engine.leaves_roots_at(addresses[cut:], lengths[cut:]),
        ]
        assert np.array_equal(np.concatenate(parts), whole), (name, cut)
    with pytest.raises(ValueError, match="int64"):
        engine.leaves_roots_at(addresses.astype(np.int32), lengths)
    with pytest.raises(ValueError, match="not negative"):
        engine.leaves_roots_at(addresses, -lengths)


def _independent_leaves_root(raw: bytes) -> bytes:
    chunks = [raw[i : i + LEAF_BYTES] for i in range(0, len(raw), LEAF_BYTES)] or [b""]
    return independent.merkle([independent.sha(c + bytes(LEAF_BYTES - len(c))) for c in chunks])


# Buffer sizes of a batch: empty, one byte, around one leaf, a group of sixteen leaves and
# one more, odd leaf counts, and around the size from which a buffer keeps its own tree.
BATCH_EDGE_BYTES = [
    0,
    1,
    1023,
    1024,
    1025,
    3 * 1024,
    15 * 1024 + 1,
    16 * 1024,
    16 * 1024 + 1,
    17 * 1024,
    33 * 1024 - 1,
    hashing._ALONE_LEAVES * 1024 - 1,
    hashing._ALONE_LEAVES * 1024,
    hashing._ALONE_LEAVES * 1024 + 1,
]


def _table_in_one_pool(
    rng: np.random.Generator, sizes: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bytes]]:
    """Random bytes for buffers of ``sizes`` laid out in one pool at unaligned addresses
    (gaps of 0 to 7 bytes): the pool, the table, and each buffer's bytes."""
    gaps = rng.integers(0, 8, len(sizes) + 1)
    pool = rng.integers(0, 256, sum(sizes) + int(gaps.sum()), dtype=np.uint8)
    offsets = np.cumsum(gaps[:-1]) + np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(int)
    addresses = (pool.ctypes.data + offsets).astype(np.int64)
    raws = [pool[o : o + n].tobytes() for o, n in zip(offsets, sizes, strict=True)]
    return pool, addresses, np.array(sizes, dtype=np.int64), raws


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_batched_roots_match_each_tree(name: str, engine: hashing.Sha256Engine) -> None:
    # The trees of a table's buffers, whose leaves and node pairs are hashed together across
    # buffers, against each buffer's root alone (an independent implementation and the
    # engine's own single-buffer path): many tiny buffers, a few big ones, random mixes,
    # every edge size, at unaligned addresses, in several orders and batch lengths.
    rng = np.random.default_rng(18)
    mixes = [
        BATCH_EDGE_BYTES,
        BATCH_EDGE_BYTES[::-1],
        [1] * 40,
        [0] * 17 + [1024] * 17,
        [int(n) for n in rng.integers(0, 16 * 1024, 60)],
        [int(n) for n in rng.integers(1, 4, 50)] + [300 * 1024 + 5, 17 * 1024],
        [int(n) * 1024 for n in rng.integers(1, 40, 30)],
        [int(rng.choice(BATCH_EDGE_BYTES)) for _ in range(25)],
    ]
    mixes += [
        [int(n) for n in rng.integers(0, 70 * 1024, int(rng.integers(1, 40)))] for _ in range(6)
    ]
    for mix in mixes:
        _pool, addresses, sizes, raws = _table_in_one_pool(rng, mix)
        got = engine.leaves_roots_at(addresses, sizes)
        assert got.shape == (len(mix), 32)
        for row, raw in zip(got, raws, strict=True):
            data = np.frombuffer(raw, dtype=np.uint8)
            want = _independent_leaves_root(raw)
            assert bytes(row) == want == engine.leaves_root(data), (name, len(raw), mix)


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_batched_roots_on_several_threads_at_once(
    name: str, engine: hashing.Sha256Engine
) -> None:
    # The tracer hands parts of a step's arrays to hashing threads while the computing thread
    # hashes the last part itself: tables hashed on four threads at once, each call many
    # times over, give each buffer's independent root (a compiled path sharing scratch memory
    # between calls would mix the threads' leaves).
    rng = np.random.default_rng(21)
    mixes = [
        [int(n) for n in rng.integers(0, 20 * 1024, int(rng.integers(20, 60)))] for _ in range(8)
    ]
    tables = [_table_in_one_pool(rng, mix) for mix in mixes]
    wants = [np.array([list(_independent_leaves_root(r)) for r in t[3]]) for t in tables]

    def hash_all(first: int) -> bool:
        for k in range(24):
            i = (first + k) % len(tables)
            _pool, addresses, sizes, _raws = tables[i]
            if not np.array_equal(engine.leaves_roots_at(addresses, sizes), wants[i]):
                return False
        return True

    with ThreadPoolExecutor(4) as threads:
        assert all(threads.map(hash_all, range(4))), name


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_messages_match_independent(name: str, engine: hashing.Sha256Engine) -> None:
    # Every length from 0 to 200 (one and two padding blocks, whole blocks) and some long
    # ones, packed at odd offsets into one buffer.
    rng = np.random.default_rng(15)
    lengths = np.array([*range(201), 1000, 1024, 4097], dtype=np.int64)
    offsets = np.cumsum(lengths + 1) - lengths
    data = rng.integers(0, 256, int(offsets[-1] + lengths[-1]), dtype=np.uint8)
    got = engine.hash_messages(data, offsets, lengths)
    for i, (start, length) in enumerate(zip(offsets, lengths, strict=True)):
        assert bytes(got[i]) == independent.sha(data[start : start + length].tobytes()), length
    empty = np.zeros(0, dtype=np.int64)
    assert engine.hash_messages(data, empty, empty).shape == (0, 32)
    with pytest.raises(ValueError, match="outside"):
        engine.hash_messages(data, np.array([data.size - 1]), np.array([2]))


# Lengths at every padding boundary (one to three blocks), around and far past the
# longest message the vector rounds take (32 blocks), and the empty message.
MESSAGE_LENGTHS = [0, 1, 54, 55, 56, 63, 64, 65, 118, 119, 120, 128, 183, 184, 2039, 2040, 2100]
LONG_MESSAGE_LENGTHS = [2041, 4000, 70_000, 70_001]


@pytest.mark.parametrize("name, engine", _engines())
@pytest.mark.parametrize("seed", range(4))
def test_engine_messages_in_any_order_match_independent(
    name: str, engine: hashing.Sha256Engine, seed: int
) -> None:
    # Messages of mixed lengths in random order, at random (unaligned, overlapping)
    # offsets: the vector engine groups them by padded length, sixteen at a time, and
    # hands small or long groups to the scalar hash, so runs of one length of 1, 2, 3, 16,
    # 17 and 40 messages are mixed in, and messages past 32 blocks of several lengths.
    rng = np.random.default_rng(seed)
    runs = [int(rng.choice(MESSAGE_LENGTHS)) for _ in range(12)]
    counts = [1, 2, 3, 16, 17, 40] * 2
    lengths = np.array(
        [length for length, count in zip(runs, counts, strict=True) for _ in range(count)]
        + [int(v) for v in rng.integers(0, 300, 60)]
        + LONG_MESSAGE_LENGTHS,
        dtype=np.int64,
    )
    rng.shuffle(lengths)
    data = rng.integers(0, 256, 75_000, dtype=np.uint8)
    offsets = rng.integers(0, data.size - lengths + 1).astype(np.int64)
    got = engine.hash_messages(data, offsets, lengths)
    for i, (start, length) in enumerate(zip(offsets, lengths, strict=True)):
        assert bytes(got[i]) == independent.sha(data[start : start + length].tobytes()), length


def test_engine_trees_of_special_values() -> None:
    # Tensors as the trace hashes them: edge floats (zeros of both signs, subnormals,
    # infinities, NaN payloads), constant tensors, and every shape class.
    rng = np.random.default_rng(14)
    specials = np.array(
        [0.0, -0.0, 1e-45, -1e-45, 1.17549435e-38, np.inf, -np.inf, np.nan, 3.4028235e38],
        dtype=np.float32,
    )
    payload = np.array([0x7FC00001, 0xFFC00000, 0x7F800001], dtype=np.uint32).view(np.float32)
    for shape in [(), (1,), (10,), (128, 10), (256, 257), (3, 5, 7, 11)]:
        size = int(np.prod(shape))
        for values in (
            rng.choice(np.concatenate([specials, payload]), size).astype(np.float32),
            np.zeros(size, np.float32),
            np.full(size, -0.0, np.float32),
        ):
            tensor = values.reshape(shape)
            assert tensor_root(tensor) == independent.tensor_root(tensor), shape


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 100])
def test_merkle_root_of_a_list_matches_reference(count: int) -> None:
    rng = np.random.default_rng(count)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for _ in range(count)]
    want = independent.merkle(hashes) if hashes else commitment.ZERO_LEAF_HASH
    assert merkle_root(hashes) == merkle_root(hashes, fast=False) == want
    if hashes:
        assert merkle_root(np.frombuffer(b"".join(hashes), np.uint8).reshape(count, 32)) == want


@pytest.mark.parametrize("name, engine", _engines())
def test_engine_forests_match_each_tree(name: str, engine: hashing.Sha256Engine) -> None:
    rng = np.random.default_rng(17)
    # Trees of one leaf, odd and even levels, the group of sixteen and past it, side by side.
    counts = np.array([1, 2, 3, 16, 17, 1, 33, 5, 64, 9], dtype=np.int64)
    hashes = rng.integers(0, 256, (int(counts.sum()), 32), dtype=np.uint8)
    ends = np.cumsum(counts).tolist()
    want = [
        independent.merkle([bytes(h) for h in hashes[end - count : end]])
        for count, end in zip(counts.tolist(), ends, strict=True)
    ]
    assert [bytes(root) for root in engine.tree_roots(hashes, counts)] == want, name
    with pytest.raises(ValueError, match="at least 1"):
        engine.tree_roots(hashes[:1], np.array([1, 0], dtype=np.int64))
    with pytest.raises(ValueError, match="add up"):
        engine.tree_roots(hashes, counts[:-1])


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_merkle_roots_of_runs_match_reference(fast: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = [int(c) for c in rng.integers(0, 40, 9)] + [0]  # an empty run among them
    rng.shuffle(counts)
    hashes = rng.integers(0, 256, (sum(counts), 32), dtype=np.uint8)
    ends = np.cumsum(counts).tolist()
    want = [
        independent.merkle([bytes(h) for h in hashes[end - count : end]])
        if count
        else commitment.ZERO_LEAF_HASH
        for count, end in zip(counts, ends, strict=True)
    ]
    roots = merkle_roots(hashes, counts, fast=fast)
    assert roots.shape == (len(counts), 32)
    assert [bytes(root) for root in roots] == want
    assert merkle_roots(np.zeros((0, 32), np.uint8), [], fast=fast).shape == (0, 32)
    with pytest.raises(ValueError, match="add up"):
        merkle_roots(hashes, [*counts, 1], fast=fast)


@pytest.mark.parametrize("fast", [True, False])
def test_merkle_roots_refuses_counts_and_hashes_it_would_cast(fast: bool) -> None:
    # Counts adding up once truncated (1.7 + 1.3 read as 1 + 1), counts of two axes, hashes
    # of another type: each a clear error, not roots of something else.
    hashes = np.zeros((2, 32), np.uint8)
    for counts in (np.array([1.7, 1.3]), np.array([[1], [1]])):
        with pytest.raises(ValueError, match="whole-number counts"):
            merkle_roots(hashes, counts, fast=fast)
    with pytest.raises(ValueError, match="uint8"):
        merkle_roots(hashes.astype(np.float64), [1, 1], fast=fast)
    assert merkle_roots(hashes, np.array([2], np.uint32), fast=fast).shape == (1, 32)


@pytest.mark.parametrize("name, engine", _engines())
@pytest.mark.parametrize("seed", range(3))
def test_engine_bulk_random_sizes_match_independent(
    name: str, engine: hashing.Sha256Engine, seed: int
) -> None:
    # Random message counts (odd and even, below and past the size hashed on every core)
    # from unaligned buffers, and random tensor sizes up to 3 MiB with a cut last leaf.
    rng = np.random.default_rng(100 + seed)
    pool = rng.integers(0, 256, 3 * 1024 * 1024 + 8, dtype=np.uint8)
    for size in (64, 1024):
        over = hashing.PARALLEL_MIN_BYTES // size
        for count in [int(rng.integers(1, 40)), int(rng.integers(over - 3, over + 900))]:
            start = int(rng.integers(0, 8))
            data = pool[start : start + size * count]
            got = engine.hash_many(data, size, count)
            for i in range(count):
                assert bytes(got[i]) == independent.sha(data[i * size : (i + 1) * size].tobytes())
    sizes = [int(n) for n in rng.integers(0, pool.size - 8, 3)] + [int(rng.integers(0, 5000))]
    for nbytes in sizes:
        start = int(rng.integers(0, 8))
        data = pool[start : start + nbytes]
        assert engine.leaves_root(data) == _independent_leaves_root(data.tobytes()), nbytes
