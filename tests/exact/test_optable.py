"""The op table against everything that implements or describes the ops: the Op codes, the
kernel paths, ExactOps, docs/exact.md, and the records real traces contain."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agents.exact.cpu import CpuKernels
from agents.exact.eager import EagerKernels
from agents.exact.errors import ExactError
from agents.exact.kernels import Kernels
from agents.exact.ops import ExactOps, Tracer
from agents.exact.optable import BY_CODE, OPS, OpSpec, attribute_problems, spec_of, table_json
from agents.exact.trace import Op, OpRecord
from agents.learning.backends import get_backend
from tests.exact.tasks import EXAMPLE_NAMES, example_task

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "exact.md").read_text()
F32 = np.float32


def test_every_op_code_has_one_row() -> None:
    assert sorted(BY_CODE) == sorted(int(op) for op in Op)
    assert len({spec.name for spec in OPS}) == len(OPS) == len(Op)
    assert all(spec_of(op).op is op for op in Op)
    with pytest.raises(ExactError, match="unknown op code"):
        spec_of(0x7777)


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
def test_kernels_of_every_path_and_the_front_end(spec: OpSpec) -> None:
    if spec.kernel is None:
        assert spec.op is Op.STATE
        return
    abstract = getattr(Kernels, spec.kernel)
    assert getattr(abstract, "__isabstractmethod__", False), f"{spec.kernel} is not in Kernels"
    for path in (CpuKernels, EagerKernels):
        method = getattr(path, spec.kernel)
        assert not getattr(method, "__isabstractmethod__", False), f"{path.__name__}.{spec.kernel}"
    front = getattr(ExactOps, spec.name)
    operands = [p for p in inspect.signature(front).parameters if p != "self"]
    assert len(operands) >= (spec.arity or 0)


def _doc_rows() -> dict[str, list[str]]:
    section = DOCS.split("## Operations (op codes)", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `(0x[0-9A-F]{2})` \| `(\w+)` \| (.*?) \| (.*?) \| (.*) \|$", line)
        if match:
            rows[match.group(1)] = list(match.groups()[1:])
    return rows


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
def test_docs_define_every_op_as_the_table_does(spec: OpSpec) -> None:
    rows = _doc_rows()
    code = f"0x{spec.code:02X}"
    assert code in rows, f"docs/exact.md has no row for {code}"
    name, operands, attributes, _output = rows[code]
    assert name == spec.name
    if spec.operands is not None:
        assert operands == (", ".join(spec.operands) or "–")
    text = spec.attributes.describe()
    assert attributes == ("–" if text == "-" else f"`{text}`")
    headings = re.findall(r"^#+ (.*)$", DOCS, flags=re.MULTILINE)
    assert spec.definition in headings


def test_the_docs_table_has_no_extra_rows() -> None:
    assert sorted(_doc_rows()) == sorted(f"0x{spec.code:02X}" for spec in OPS)


def _every_op(E: ExactOps) -> None:
    """One call of every op (immediates in every slot of a binary op), on small tensors."""
    rng = np.random.default_rng(3)
    x = E.array(rng.standard_normal((2, 3)).astype(F32))
    y = E.array(rng.standard_normal((2, 3)).astype(F32))
    for name in ("add", "sub", "mul", "div", "maximum", "minimum", "lt", "le", "eq"):
        method = getattr(E, name)
        method(x, y)
        method(x, 0.5)
        method(2.0, y)
    E.select(x, y, 1.0)
    E.select(0.0, x, y)
    E.ldexp(x, 3.0)
    for name in ("neg", "abs", "sqrt", "exp", "log"):
        getattr(E, name)(x)
    E.sum(x, 1)
    E.amax(x, 0)
    E.matmul_nt(x, y)
    E.transpose(x, [1, 0])
    E.reshape(x, [3, 2])
    index = E.array(np.array([1, 0, 1], dtype=F32))
    E.index_select(x, index, 1)
    E.take_along(x, E.array(np.array([[2], [0]], dtype=F32)))
    E.one_hot(index, 4)
    E.causal_fill(E.array(rng.standard_normal((3, 3)).astype(F32)), float("-inf"))
    image = E.array(rng.standard_normal((1, 2, 4, 4)).astype(F32))
    cols = E.im2col(image, 3, 1, 1)
    E.col2im(cols, [1, 2, 4, 4], 3, 1, 1)
    E.scatter_add(x, E.array(np.array([2, 0], dtype=F32)), 3)
    E.full([2, 2], 1.5)
    E.commit_state({"a": x, "b": y})


def _check_records(records: list[OpRecord]) -> set[Op]:
    seen = set()
    for record in records:
        problems = attribute_problems(record.op, record.attributes, len(record.inputs))
        assert not problems, problems
        seen.add(record.op)
    return seen


def test_every_op_traced_fits_its_row() -> None:
    tracer = Tracer(CpuKernels())
    _every_op(ExactOps(CpuKernels(), tracer))
    records = list(tracer.segment.records())
    # Decoded records (what an auditor or the chain reads) fit as well.
    seen = _check_records([OpRecord.decode(r.encode()) for r in records])
    assert seen == set(Op)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_example_traces_fit_the_table(name: str) -> None:
    task = example_task(name)
    start = task.initial_state()
    session = get_backend("exact").start(task, start, trace=True)
    session.run(task.batches(0, 1))
    session.traced_distances(start, session.state(), "l2", 1e-8)
    tracer = session._tracer  # type: ignore[attr-defined]
    _check_records(list(tracer.segment.records()))


@pytest.mark.parametrize(
    "op, attributes, inputs, problem",
    [
        (Op.ADD, (), 2, None),
        (Op.ADD, (1, F32(0.5)), 1, None),
        (Op.SELECT, (1, F32(0.5), 2, F32(1.0)), 1, None),
        (Op.ADD, (1, F32(0.5)), 2, "tensor inputs"),
        (Op.ADD, (0, F32(1), 1, F32(2)), 0, "tensor inputs"),
        (Op.ADD, (2, F32(0.5)), 1, "slots"),
        (Op.SELECT, (2, F32(0.5), 1, F32(1.0)), 1, "slots"),
        (Op.ADD, (F32(1), F32(0.5)), 1, "not i64"),
        (Op.ADD, (1, 2), 1, "not f32"),
        (Op.ADD, (1,), 1, "attributes"),
        (Op.NEG, (1, F32(0.5)), 1, "attributes"),
        (Op.SUM, (), 1, "attributes"),
        (Op.SUM, (0, 1), 1, "attributes"),
        (Op.SUM, (0,), 2, "inputs"),
        (Op.RESHAPE, (), 1, None),
        (Op.RESHAPE, (2, 3, 4), 1, None),
        (Op.FULL, (F32(1),), 0, None),
        (Op.FULL, (F32(1), 2, 2), 0, None),
        (Op.FULL, (2, 2), 0, "not f32"),
        (Op.COL2IM, (3, 1, 1, 1, 2, 4), 1, "attributes"),
        (Op.STATE, (), 0, None),
        (Op.STATE, (), 7, "lists none"),
        (Op.STATE, (0,), 0, "attributes"),
    ],
)
def test_attribute_problems(
    op: Op, attributes: tuple[object, ...], inputs: int, problem: str | None
) -> None:
    problems = attribute_problems(op, attributes, inputs)
    if problem is None:
        assert problems == []
    else:
        assert problems and problem in " ".join(problems)


def test_table_as_json() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agents.exact.optable"], capture_output=True, text=True, check=True
    ).stdout
    table = json.loads(out)
    assert table == json.loads(json.dumps(table_json()))
    assert table["version"] == 1
    rows = {row["code"]: row for row in table["ops"]}
    assert rows[0x01] == {
        "code": 1,
        "name": "add",
        "arity": 2,
        "operands": ["a", "b"],
        "immediates": True,
        "attributes": {
            "fixed": [],
            "repeated": [{"name": "slot", "type": "i64"}, {"name": "value", "type": "f32"}],
            "text": "(slot:i64 value:f32)*",
        },
        "kind": "elementwise",
        "definition": "Operations (op codes)",
        "kernel": "add",
        "paths": ["cpu", "eager"],
    }
    assert rows[0x40]["arity"] is None and rows[0x40]["kernel"] is None
