"""Several processes on one store directory, and a writer killed in the middle of an add."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agents.files import TEMP_PREFIX
from agents.store import AddOptions, cid_of_bytes
from agents.store.embedded import EmbeddedStore

OPTIONS = AddOptions(chunk_size=4096, max_links=8)
SHARED = bytes(range(256)) * 300

WORKER = """
import hashlib, json, random, sys
from agents.store import AddOptions, MissingBlockError
from agents.store.embedded import EmbeddedStore

root, seed, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = EmbeddedStore(root)
options = AddOptions(chunk_size=4096, max_links=8)
shared = bytes(range(256)) * 300
rng = random.Random(seed)
pinned = {}
for i in range(rounds):
    data = rng.randbytes(rng.choice([0, 1, 4096, 4097, rng.randint(0, 120_000)]))
    keep = i % 3 != 0
    cid = store.put_bytes(data, options, pin=keep)
    shared_cid = store.put_bytes(shared, options)
    assert store.get_bytes(shared_cid) == shared
    if keep:
        pinned[cid] = hashlib.sha256(data).hexdigest()
        assert store.get_bytes(cid) == data
    else:
        try:
            assert store.get_bytes(cid) == data  # unpinned: gc may have taken it already
        except MissingBlockError:
            pass
    for old, digest in rng.sample(sorted(pinned.items()), min(3, len(pinned))):
        assert hashlib.sha256(store.get_bytes(old)).hexdigest() == digest
print(json.dumps(pinned))
"""

COLLECTOR = """
import sys, time
from pathlib import Path
from agents.store.embedded import EmbeddedStore

store = EmbeddedStore(sys.argv[1])
stop = Path(sys.argv[2])
runs = removed = 0
while not stop.exists():
    removed += store.gc().removed_blocks
    runs += 1
    time.sleep(0.01)
print(runs, removed)
"""

ADDER = """
import sys
from agents.store import AddOptions
from agents.store.embedded import EmbeddedStore

store = EmbeddedStore(sys.argv[1])
print(store.put_file(sys.argv[2], AddOptions(chunk_size=4096, max_links=8)), flush=True)
"""


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_two_writers_and_a_collector_share_a_store(tmp_path: Path) -> None:
    root = tmp_path / "shared-store"
    EmbeddedStore(root)
    stop = tmp_path / "stop"
    collector = _python(COLLECTOR, str(root), str(stop))
    workers = [_python(WORKER, str(root), str(seed), "40") for seed in (1, 2)]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        outputs.append(json.loads(out))
    stop.touch()
    out, err = collector.communicate(timeout=60)
    assert collector.returncode == 0, err
    runs, _removed = (int(x) for x in out.split())
    assert runs > 0

    store = EmbeddedStore(root)
    store.gc()
    expected = {cid_of_bytes(SHARED, OPTIONS)}
    for pinned in outputs:
        expected |= set(pinned)
        for cid, digest in pinned.items():
            assert hashlib.sha256(store.get_bytes(cid)).hexdigest() == digest
    assert set(store.pins()) == expected
    assert store.verify().corrupt == ()
    assert not list(store.root.glob(f"blocks/*/{TEMP_PREFIX}*"))


def _block_files(root: Path) -> list[Path]:
    return [p for p in (root / "blocks").glob("*/*") if not p.name.startswith(TEMP_PREFIX)]


def test_writer_killed_mid_add_leaves_the_store_consistent(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = EmbeddedStore(root)
    data = bytes((i * 13 + (i >> 12)) % 256 for i in range(3_000_000))
    expected = cid_of_bytes(data, OPTIONS)
    fifo = tmp_path / "input"
    os.mkfifo(fifo)
    adder = _python(ADDER, str(root), str(fifo))
    try:
        with open(fifo, "wb") as pipe:
            pipe.write(data[: len(data) // 2])
            pipe.flush()
            deadline = time.monotonic() + 60
            while len(_block_files(root)) < 200:
                assert time.monotonic() < deadline, "the adder wrote no blocks"
                time.sleep(0.01)
            os.kill(adder.pid, signal.SIGKILL)
            adder.wait(timeout=30)
    except BrokenPipeError:
        pass
    assert adder.returncode == -signal.SIGKILL

    # Every block that exists is whole; the root does not exist, nothing is pinned.
    assert store.verify().corrupt == ()
    assert len(_block_files(root)) >= 200
    assert not store.has(expected)
    assert store.pins() == []

    # Adding again completes the content; gc then removes only leftovers.
    assert store.put_bytes(data, OPTIONS) == expected
    report = store.gc()
    assert not list(root.glob(f"blocks/*/{TEMP_PREFIX}*"))
    assert report.kept_blocks == len(_block_files(root))
    assert store.get_bytes(expected) == data


def test_leftover_temp_file_is_never_a_block_and_gc_removes_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    data = b"complete content" * 1000
    cid = cid_of_bytes(data)
    digest = hashlib.sha256(b"").hexdigest()
    shard = store.root / "blocks" / digest[:2]
    shard.mkdir(parents=True, exist_ok=True)
    torn = shard / f"{TEMP_PREFIX}999-deadbeef"
    torn.write_bytes(data[:100])
    assert not store.has(cid)
    assert store.verify().checked_blocks == 0
    assert store.put_bytes(data) == cid
    assert store.gc().removed_temp_files == 1
    assert not torn.exists()
    assert store.get_bytes(cid) == data


OPENER = """
import os, sys, time
from agents.store.embedded import EmbeddedStore

while not os.path.exists(sys.argv[3]):  # start together
    time.sleep(0.001)
store = EmbeddedStore(sys.argv[1])
print(store.put_bytes(sys.argv[2].encode()))
"""


def test_processes_creating_one_store_at_once(tmp_path: Path) -> None:
    root = tmp_path / "new-store"
    go = tmp_path / "go"
    openers = [_python(OPENER, str(root), f"content {i}", str(go)) for i in range(8)]
    time.sleep(1.0)
    go.touch()
    cids = []
    for index, opener in enumerate(openers):
        out, err = opener.communicate(timeout=120)
        assert opener.returncode == 0, err
        cids.append(out.strip())
        assert cids[-1] == cid_of_bytes(f"content {index}".encode())
    assert sorted(EmbeddedStore(root).pins()) == sorted(cids)


def test_threads_pinning_the_same_content(tmp_path: Path) -> None:
    import threading

    store = EmbeddedStore(tmp_path / "store")
    cid = store.put_bytes(b"popular", pin=False)
    errors: list[BaseException] = []

    def pin() -> None:
        try:
            for _ in range(20):
                store.pin(cid)
                store.put_bytes(b"popular")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=pin) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.pins() == [cid]
    assert not list((store.root / "pins").glob(".tmp-*"))
