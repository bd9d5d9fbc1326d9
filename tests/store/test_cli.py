"""``veritrain store``: every vector through ``store cid``, and the other commands."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.cli import main
from agents.store import AddOptions, cid_of_bytes
from agents.store.cid import CID
from agents.store.embedded import EmbeddedStore
from agents.store.reader import node_links
from tests.store.conftest import load_vectors, vector_input

_FLAGS = {"cid_version": "--cid-version", "chunk_size": "--chunk-size", "max_links": "--max-links"}


def _flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        if key == "raw_leaves":
            flags.append("--raw-leaves" if value else "--no-raw-leaves")
        else:
            flags += [_FLAGS[key], str(value)]
    return flags


class Run:
    """Runs the ``veritrain`` entry point in-process and captures its output."""

    def __init__(self, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch):
        self._capture = capsysbinary
        self._monkeypatch = monkeypatch

    def __call__(self, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
        self._capture.readouterr()
        self._monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self._capture.readouterr()
        return code, out, err.decode()


@pytest.fixture
def run(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Run:
    monkeypatch.setenv("VERITRAIN_STORE", str(tmp_path / "cli-store"))
    return Run(capsysbinary, monkeypatch)


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda v: v["cid"])
def test_cid_command_prints_kubo_cids(vector: dict[str, Any], run: Run, tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(vector_input(vector["input"]))
    code, out, err = run("store", "cid", str(path), *_flags(vector["options"]))
    assert (code, err) == (0, "")
    assert out.decode() == vector["cid"] + "\n"


def test_cid_command_reads_standard_input(run: Run) -> None:
    code, out, _ = run(
        "store", "cid", "-", "--cid-version", "1", "--no-raw-leaves", stdin=b"hello world"
    )
    assert code == 0
    assert out.decode().strip() == "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"


def test_add_get_pin_gc(run: Run, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    path = tmp_path / "artifact"
    path.write_bytes(data)
    code, out, err = run(
        "store", "add", str(path), "-", "--chunk-size", "100000", stdin=b"from stdin"
    )
    assert (code, err) == (0, "")
    first, second = out.decode().split()
    assert first == cid_of_bytes(data, AddOptions(chunk_size=100_000))
    assert second == cid_of_bytes(b"from stdin", AddOptions(chunk_size=100_000))
    code, out, _ = run("store", "get", first)
    assert code == 0 and out == data
    target = tmp_path / "copy"
    assert run("store", "get", first, "-o", str(target))[0] == 0
    assert target.read_bytes() == data
    assert run("store", "pins")[1].decode().split() == sorted([first, second])
    assert run("store", "unpin", second)[0] == 0
    code, out, _ = run("store", "gc")
    assert code == 0 and out.decode().startswith("removed 1 blocks")
    code, _, err = run("store", "get", second)
    assert code == 2 and err == f"error: block {second} is not in the store\n"
    code, out, _ = run("store", "add", "--no-pin", str(path), "--cid-version", "1")
    assert code == 0 and run("store", "pins")[1].decode().split() == [first]
    assert run("store", "pin", out.decode().strip())[0] == 0
    assert run("store", "verify")[1].decode().startswith("checked ")


def test_corrupt_block_through_the_cli(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "artifact"
    path.write_bytes(bytes(range(256)) * 4000)
    code, out, _ = run("store", "add", str(path), "--chunk-size", "100000")
    cid = CID.parse(out.decode().strip())
    store = EmbeddedStore(tmp_path / "cli-store")
    leaf = node_links(cid, store.get_block(cid))[1].cid
    block = store.root / "blocks" / leaf.digest.hex()[:2] / leaf.digest.hex()
    block.write_bytes(block.read_bytes()[:-1] + b"?")
    target = tmp_path / "out"
    code, _, err = run("store", "get", str(cid), "-o", str(target))
    assert code == 2 and err.startswith(f"error: block {leaf} is corrupt")
    assert not target.exists()
    assert list(tmp_path.glob(".out.*")) == []
    code, out, err = run("store", "verify")
    assert code == 2 and out.decode().startswith("corrupt: ")
    assert "1 corrupt blocks; `--repair` removes them" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["store", "cid", "/nonexistent/file"], "error: no such file: /nonexistent/file"),
        (["store", "cid", "-", "--chunk-size", "0"], "error: chunk_size must be an integer from 1"),
        (["store", "cid", "-", "--max-links", "1"], "error: max_links must be an integer from 2"),
        (["store", "get", "Qmnope"], "error: invalid CID 'Qmnope'"),
        (
            ["store", "pin", "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],
            "names a dag-cbor block",
        ),
        (["store", "unpin", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"], "is not pinned"),
        (["store", "pins", "--store", "ftp://host/x"], "unsupported scheme 'ftp'"),
        (["store", "gc", "--store", "http://127.0.0.1:9"], "works on an embedded store"),
        (["store", "serve", "--store", "http://127.0.0.1:9"], "serves an embedded store"),
    ],
)
def test_bad_input_is_one_clear_line(run: Run, argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == b""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_script() -> None:
    """The installed ``veritrain`` command, as a user runs it."""
    script = Path(sys.executable).with_name("veritrain")
    result = subprocess.run(
        [str(script), "store", "cid", "-", "--cid-version", "1"],
        input=b"hello world",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e\n"
