"""A solver that is a swarm: its [swarm] settings, the backend they make, the key and the
worker's command line."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.errors import ConfigError
from agents.learning.backends import BackendError
from agents.learning.backends.native import NativeBackend
from agents.node.config import SwarmSettings, load_config
from agents.roles.hardware import Hardware
from agents.swarm.plan import FORMAT
from agents.swarm.solver import check_swarm, read_key, swarm_backend, training_backend
from agents.swarm.training import SwarmBackend
from tests.command_line import veritrain
from tests.swarm.test_training import AQ, _spec


def _config(tmp_path: Path, text: str, *overrides: str) -> Any:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return load_config(path, overrides=list(overrides), env={})


def test_the_swarm_section_reads_relative_paths_and_refuses_contradictions(
    tmp_path: Path,
) -> None:
    config = _config(
        tmp_path, '[swarm]\nworkers = 4\nlisten = "10.0.0.1:7650"\nkey_file = "swarm.key"\n'
    )
    assert config.swarm.key_file == (tmp_path / "swarm.key").resolve()
    assert config.swarm.enabled
    assert not _config(tmp_path, "").swarm.enabled
    assert _config(tmp_path, "", "swarm.workers=3").swarm.workers == 3
    with pytest.raises(ConfigError, match=r"needs swarm\.key_file"):
        _config(tmp_path, '[swarm]\nlisten = "10.0.0.1:7650"\n')
    with pytest.raises(ConfigError, match="how many join"):
        _config(tmp_path, '[swarm]\nlisten = "h:1"\nkey_file = "k"\n')
    assert _config(
        tmp_path, '[swarm]\nlisten = "h:1"\nkey_file = "k"\nplan = "p.json"\n'
    ).swarm.enabled
    with pytest.raises(ConfigError, match="one task at a time"):
        _config(
            tmp_path,
            '[swarm]\nworkers = 2\nlisten = "h:1"\nkey_file = "k"\n[solver]\nmax_parallel = 2\n',
        )
    with pytest.raises(ConfigError, match="listen"):
        _config(tmp_path, '[swarm]\nworkers = 2\nlisten = "no port"\nkey_file = "k"\n')


def test_a_task_the_swarm_fits_trains_on_it_and_another_in_the_solvers_process() -> None:
    settings = SwarmSettings(workers=2)
    fits = _spec(parallel={"microbatches": 2})
    backend, alone = training_backend(settings, fits, "native", {"threads": 1})
    assert isinstance(backend, SwarmBackend) and alone is None
    assert backend.name == "native" and backend.workers == 2
    plain = _spec()  # no parallel section: two workers could only be a pipeline of two stages
    backend, alone = training_backend(settings, plain, "native", {"threads": 1})
    assert isinstance(backend, NativeBackend)
    assert alone is not None and "no parallel section" in alone
    piped = SwarmSettings(workers=2, stages=2)
    backend, alone = training_backend(piped, plain, "exact", {"threads": 1})
    assert isinstance(backend, SwarmBackend) and alone is None
    backend, alone = training_backend(None, fits, "native", {"threads": 1})
    assert isinstance(backend, NativeBackend) and alone is None
    hardware = Hardware("cpu", 1, settings)
    backend, alone = hardware.training_backend("native", fits)
    assert isinstance(backend, SwarmBackend) and backend.inner_options["device"] == "cpu"


def test_a_plan_and_a_key_make_a_swarm_of_workers_elsewhere(tmp_path: Path) -> None:
    plan = {
        "format": FORMAT, "stages": 2, "replicas": 2,
        "pipelines": [["a", "b"], ["c", "d"]],
    }  # fmt: skip
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "swarm.key").write_text("ab" * 32 + "\n")
    settings = SwarmSettings(
        plan=tmp_path / "plan.json", listen="127.0.0.1:7650", key_file=tmp_path / "swarm.key"
    )
    backend = swarm_backend(settings, "exact", {"threads": 1})
    assert backend.workers == 4 and backend.stages == 2 and backend.key == bytes([0xAB] * 32)
    compressed = _spec(
        model={"kind": "mlp", "inputs": 6, "hidden": [8, 8], "outputs": 3},
        parallel={"microbatches": 4, "stages": 2, "compression": AQ},
    )
    assert backend.shape(compressed) == (2, 2)
    by_rank = swarm_backend(
        SwarmSettings(workers=3, listen="127.0.0.1:7650", key_file=tmp_path / "swarm.key"),
        "native",
        {"threads": 1},
    )
    assert by_rank.workers == 3 and by_rank.plan is None and by_rank.listen == "127.0.0.1:7650"
    with pytest.raises(ConfigError, match="the plan has 4 devices"):
        swarm_backend(SwarmSettings(workers=3, plan=tmp_path / "plan.json"), "exact", {})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        swarm_backend(SwarmSettings(plan=tmp_path / "bad.json"), "exact", {})


@pytest.mark.parametrize(
    ("text", "words"),
    [(None, "cannot read"), ("xyz", "hex digits"), ("abcd", "2 bytes")],
)
def test_bad_key_files_are_configuration_errors(
    tmp_path: Path, text: str | None, words: str
) -> None:
    path = tmp_path / "swarm.key"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        read_key(path)


def test_swarm_key_writes_a_private_key_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "swarm.key"
    code, printed, _ = veritrain(capsys, "swarm", "key", "--out", str(out))
    assert code == 0 and "key written" in printed
    assert len(read_key(out)) == 32
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_text()
    code, _, err = veritrain(capsys, "swarm", "key", "--out", str(out))
    assert code == 2 and "exists" in err
    assert out.read_text() == first


def _worker(*args: str, key: str | None = "ab" * 32) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("VERITRAIN_SWARM_KEY", None)
    if key is not None:
        env["VERITRAIN_SWARM_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "agents.swarm.worker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_worker_says_what_is_wrong(tmp_path: Path) -> None:
    assert _worker().returncode == 2
    assert _worker("nowhere", "0").returncode == 2
    far = _worker("127.0.0.1:99999", "0")
    assert far.returncode == 2 and "a port from 1 to 65535" in far.stderr
    assert "Traceback" not in far.stderr
    missing = _worker("127.0.0.1:1", "0", key=None)
    assert missing.returncode == 2 and "VERITRAIN_SWARM_KEY" in missing.stderr
    assert _worker("127.0.0.1:1", "0", key="zz").returncode == 2
    assert _worker("127.0.0.1:1", "0", "--retry", "-1").returncode == 2
    gone = _worker(f"unix:{tmp_path}/none.sock", "0")
    assert gone.returncode == 1 and "cannot join the swarm" in gone.stderr


def test_workers_with_retry_wait_for_a_session_and_serve_one_after_another(
    tmp_path: Path,
) -> None:
    from agents.learning.backends import get_backend
    from agents.swarm.training import _free_port
    from tests.swarm.test_training import _proof, _staged

    task = _staged(microbatches=2, stages=2)
    alone = _proof(task, get_backend("exact", threads=1), tmp_path, "alone")
    key = bytes(range(32))
    address = f"127.0.0.1:{_free_port('127.0.0.1')}"
    env = dict(os.environ, VERITRAIN_SWARM_KEY=key.hex(), GLOO_SOCKET_IFNAME="lo")
    logs = [tmp_path / f"worker{rank}.err" for rank in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "agents.swarm.worker", address, str(rank), "--retry", "0.2"],
            env=env,
            stderr=log.open("w"),
        )
        for rank, log in enumerate(logs)
    ]
    try:
        # Nobody listens yet: each worker says so once and keeps trying.
        deadline = time.monotonic() + 120
        while not all("trying again" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            assert all(w.poll() is None for w in workers)
            time.sleep(0.2)
        time.sleep(1.0)  # five more tries each
        proofs = [
            _proof(task, SwarmBackend(2, listen=address, key=key), tmp_path, f"swarm{n}")
            for n in range(2)
        ]
        assert all(w.poll() is None for w in workers)  # still there for the next task
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
    assert proofs == [alone, alone]
    for log in logs:
        # Once before the first session, at most once between the two, once after.
        assert 1 <= log.read_text().count("cannot join the swarm") <= 3


def test_a_listen_address_the_session_cannot_use_is_refused_before_the_agent_starts(
    tmp_path: Path,
) -> None:
    key = tmp_path / "swarm.key"
    key.write_text("ab" * 32)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        for listen, words in [
            ("127.0.0.1:99999", "a port from 1 to 65535"),
            ("192.0.2.1:7650", "cannot listen at 192.0.2.1:7650"),  # not this machine's
            (busy, f"cannot listen at {busy}: Address already in use"),
        ]:
            settings = SwarmSettings(workers=2, listen=listen, key_file=key)
            with pytest.raises(ConfigError, match=words):
                check_swarm(settings, "native", {"threads": 1})
            hardware = Hardware("cpu", 1, settings)
            with pytest.raises(ConfigError, match=words):
                hardware.check()
        # A session that finds its address taken says so, not an internal error.
        task = _spec(parallel={"microbatches": 2})
        from agents.learning import datasets
        from agents.learning.task import Task

        assert task.dataset.source is not None
        bound = Task.bind(task, datasets.build(task.dataset.source))
        backend = SwarmBackend(2, listen=busy, key=b"k" * 32)
        with pytest.raises(BackendError, match=f"cannot listen at {busy}"):
            backend.start(bound, bound.initial_state())
    free = SwarmSettings(workers=2, listen="127.0.0.1:0", key_file=key)
    with pytest.raises(ConfigError, match="a port from 1 to 65535"):
        check_swarm(free, "native", {"threads": 1})
