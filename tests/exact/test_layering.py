"""The exact kernels are a bottom layer: they import nothing above them (not even lazily or by
name), the eager path loads no compiler, and it runs, traced, where numba cannot load."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from agents.commitment import state_root
from agents.learning.backends import get_backend
from tests.exact.tasks import example_task

ROOT = Path(__file__).resolve().parents[2]
EXACT = ROOT / "agents" / "exact"
ABOVE = ("agents.learning", "agents.roles", "agents.chain", "agents.store", "agents.cli")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement anywhere in ``path`` names (functions included), and
    every string handed to ``importlib.import_module`` or ``__import__``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name in ("importlib.import_module", "import_module", "__import__"):
                found.append((node.lineno, f"<dynamic import: {ast.unparse(node)}>"))
    return found


@pytest.mark.parametrize("path", sorted(EXACT.glob("*.py")), ids=lambda p: p.name)
def test_exact_imports_nothing_above_it(path: Path) -> None:
    for line, module in _imports(path):
        assert not module.startswith("<dynamic"), f"{path.name}:{line} imports by name: {module}"
        assert not module.startswith(ABOVE), f"{path.name}:{line} imports {module}"


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from agents.learning import spec\n"
        "def g():\n    import importlib\n    importlib.import_module('agents.roles')\n"
    )
    found = [name for _, name in _imports(module)]
    assert "agents.learning" in found
    assert any(name.startswith("<dynamic") for name in found)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_eager_path_loads_no_compiler() -> None:
    code = (
        "import sys\n"
        "import agents.exact.eager, agents.exact.ops, agents.exact.composites, "
        "agents.exact.layers, agents.exact.optim, agents.exact.distance, agents.exact.optable\n"
        "import agents.learning.backends.exact\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite'))\n"
        "assert not loaded, loaded\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr


def test_eager_path_trains_and_traces_without_numba() -> None:
    # numba and llvmlite made unimportable: the eager path must train, trace and commit
    # (hashlib instead of the compiled engine) to the bits the CPU path gets here.
    task = example_task("mlp")
    start = task.initial_state()
    session = get_backend("exact", path="cpu").start(task, start, trace=True)
    session.run(task.batches(0, 2))
    want = [state_root(session.state()).hex(), (session.trace_root() or b"").hex()]
    code = (
        "import sys, json\n"
        "sys.modules['numba'] = None\n"
        "sys.modules['llvmlite'] = None\n"
        "from agents.commitment import engine, state_root\n"
        "from agents.learning.backends import get_backend\n"
        "from tests.exact.tasks import example_task\n"
        "assert engine() is None\n"
        "task = example_task('mlp')\n"
        "session = get_backend('exact', device='cpu', path='eager')"
        ".start(task, task.initial_state(), trace=True)\n"
        "session.run(task.batches(0, 2))\n"
        "print(json.dumps([state_root(session.state()).hex(), session.trace_root().hex()]))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == want


def test_cpu_path_without_numba_is_a_clear_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['numba'] = None\n"
        "from agents.learning.backends import BackendError, get_backend\n"
        "try:\n"
        "    get_backend('exact', path='cpu')\n"
        "except BackendError as exc:\n"
        "    print(exc)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert "the cpu path needs numba" in result.stdout
