"""A devnet node keeps the states it persists where veritrain removes them.

anvil's default is a new directory under ``~/.foundry/anvil/tmp`` per node that nothing
removes (a day of test runs left tens of gigabytes there).
"""

from __future__ import annotations

from pathlib import Path

from agents.devnet.anvil import cache_beside, start_anvil


def _cache_argument(pid: int) -> Path:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--cache-path") + 1].decode())


def test_a_node_persists_its_states_in_a_directory_removed_when_it_stops(tmp_path: Path) -> None:
    node = start_anvil(log_path=tmp_path / "anvil.log")
    try:
        cache = node.cache_path
        assert cache is not None and cache.is_dir()
        assert _cache_argument(node.pid) == cache
        assert not cache.is_relative_to(Path.home())
    finally:
        node.stop()
    assert not cache.exists()


def test_a_node_with_a_state_file_keeps_its_states_beside_it_emptied_at_start(
    tmp_path: Path,
) -> None:
    state = tmp_path / "anvil-state.json"
    stale = cache_beside(state) / "stale-state"
    stale.parent.mkdir()
    stale.write_bytes(b"from a node that was killed")
    node = start_anvil(state_path=state, log_path=tmp_path / "anvil.log")
    try:
        assert node.cache_path == tmp_path / "anvil-state.json.cache"
        assert _cache_argument(node.pid) == node.cache_path
        assert not stale.exists()
    finally:
        node.stop()
    assert state.is_file()  # the chain itself is kept for the next start
    assert not cache_beside(state).exists()
