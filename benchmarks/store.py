"""Artifact store: CID throughput against sha256, and memory while adding a large file.

Figures (``benchmarks/results/store.json``):

- ``cid_mb_s``: computing the CID (``ipfs add --only-hash``, default options) of a
  256 MiB file on disk; ``sha256_mb_s``: hashlib sha256 over the same file, read the
  same way (unbuffered 256 KiB reads), in the same run. Each is the best of
  ``REPEATS`` alternating runs. ``ratio_to_sha256`` = cid_mb_s / sha256_mb_s (goal
  >= 0.8: reading and hashing the data is the floor of the work). For reference,
  ``sha256_in_memory_mb_s`` hashes the bytes already in memory (no reads), and
  ``ratio_to_sha256_in_memory`` compares against that.
- ``peak_rss_mb``: how far the peak resident memory of a fresh process grows above its
  resident memory just before it adds a 1 GiB file to an embedded store (goal <= 64;
  on Linux the peak is reset through ``/proc/self/clear_refs`` first, so earlier
  allocations cannot hide growth). ``peak_rss_read_mb`` is the same for reading it back. The same
  process reports ``add_mb_s`` (with fsync) and ``read_mb_s`` (every block verified).
- ``rpc_add_mb_s`` / ``rpc_cat_mb_s``: the same 256 MiB file through the Kubo client
  against ``store serve`` on loopback (upload with local CID check; verified cat).

The files live in a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
CID_FILE_MIB = 256
ADD_FILE_MIB = 1024
REPEATS = 5
READ_SIZE = 256 * 1024

_ADD_CHILD = """
import json, resource, sys, time
from agents.store.embedded import EmbeddedStore


def status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def reset_peak():
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return status_kb("VmRSS"), lambda: status_kb("VmHWM")
    except OSError:
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak(), peak


store = EmbeddedStore(sys.argv[1])
path = sys.argv[2]
size = int(sys.argv[3])
base, peak = reset_peak()
started = time.perf_counter()
cid = store.put_file(path)
added = time.perf_counter() - started
add_peak = peak()
read_base, peak = reset_peak()
started = time.perf_counter()
total = 0
for piece in store.open(cid):
    total += len(piece)
read = time.perf_counter() - started
assert total == size, (total, size)
print(json.dumps({"cid": cid, "base_kb": base, "add_peak_kb": add_peak, "read_base_kb": read_base,
                  "read_peak_kb": peak(), "add_s": added, "read_s": read}))
"""


def _write_file(path: Path, mib: int) -> None:
    """``mib`` MiB of distinct pseudo-random data (no two chunks alike, so nothing dedups)."""
    block = hashlib.shake_256
    with open(path, "wb") as out:
        for index in range(mib):
            out.write(block(index.to_bytes(8, "little")).digest(MIB))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()


def _timed(function: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def run() -> dict[str, Any]:
    from agents.store.embedded import EmbeddedStore
    from agents.store.importer import cid_of_file
    from agents.store.kubo import KuboStore
    from agents.store.server import RpcServer

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-store-") as tmp:
        work = Path(tmp)
        small = work / "256MiB.bin"
        _write_file(small, CID_FILE_MIB)
        _sha256_file(small)  # into the page cache
        cid_times, sha_times = [], []
        cid = ""
        for _ in range(REPEATS):
            seconds, cid = _timed(cid_of_file, small)
            cid_times.append(seconds)
            seconds, _ = _timed(_sha256_file, small)
            sha_times.append(seconds)
        content = small.read_bytes()
        memory_times = [_timed(hashlib.sha256, content)[0] for _ in range(REPEATS)]
        del content
        cid_mb_s = CID_FILE_MIB * MIB / 1e6 / min(cid_times)
        memory_mb_s = CID_FILE_MIB * MIB / 1e6 / min(memory_times)
        sha_mb_s = CID_FILE_MIB * MIB / 1e6 / min(sha_times)
        figures.update(
            cid_mb_s=round(cid_mb_s, 1),
            sha256_mb_s=round(sha_mb_s, 1),
            ratio_to_sha256=round(cid_mb_s / sha_mb_s, 3),
            sha256_in_memory_mb_s=round(memory_mb_s, 1),
            ratio_to_sha256_in_memory=round(cid_mb_s / memory_mb_s, 3),
            cid_file_mib=CID_FILE_MIB,
            cid=cid,
        )

        served = EmbeddedStore(work / "served-store")
        with RpcServer(served, "127.0.0.1", 0) as server:
            client = KuboStore(server.url)
            seconds, rpc_cid = _timed(client.put_file, small)
            figures["rpc_add_mb_s"] = round(CID_FILE_MIB * MIB / 1e6 / seconds, 1)
            assert rpc_cid == cid
            started = time.perf_counter()
            received = sum(len(piece) for piece in client.open(rpc_cid))
            figures["rpc_cat_mb_s"] = round(
                CID_FILE_MIB * MIB / 1e6 / (time.perf_counter() - started), 1
            )
            assert received == CID_FILE_MIB * MIB
            client.close()
        small.unlink()

        big = work / "1GiB.bin"
        _write_file(big, ADD_FILE_MIB)
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                _ADD_CHILD,
                str(work / "add-store"),
                str(big),
                str(big.stat().st_size),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
        )
        report = json.loads(child.stdout)
        size_mb = ADD_FILE_MIB * MIB / 1e6
        figures.update(
            baseline_rss_mb=round(report["base_kb"] / 1024, 1),
            peak_rss_mb=round((report["add_peak_kb"] - report["base_kb"]) / 1024, 1),
            peak_rss_read_mb=round((report["read_peak_kb"] - report["read_base_kb"]) / 1024, 1),
            add_file_mib=ADD_FILE_MIB,
            add_mb_s=round(size_mb / report["add_s"], 1),
            read_mb_s=round(size_mb / report["read_s"], 1),
        )
    figures["goals"] = {"ratio_to_sha256": ">= 0.8", "peak_rss_mb": "<= 64"}
    figures["goals_met"] = figures["ratio_to_sha256"] >= 0.8 and figures["peak_rss_mb"] <= 64
    return figures
