"""The table of trace operations: every op code, its operands, attributes, definition and kernels.

This is the one list every implementation of the exact operations is checked
against: the two kernel paths (``agents.exact.cpu``, ``agents.exact.eager``), the
traced front end (``agents.exact.ops.ExactOps``), docs/exact.md, and the on-chain
adjudicators. A new op exists once it is a row here; the tests then demand its
definition, its kernels on every path and its records' attribute layout.

Per op (``OpSpec``):

- ``code``: the ``u16`` op code of its records (``agents.exact.trace.Op``);
- ``name``: its name (the ``ExactOps`` method and, but for ``state``, the
  ``Kernels`` method);
- ``operands``: the names of its operands in slot order; ``arity`` is their
  number (``None`` for ``state``, whose record lists no inputs: its output is the
  state root over the state's tensors, any number of them);
- ``immediates``: whether an operand may be a float32 constant instead of a
  tensor, recorded as the attribute pair ``(slot, value)`` and left out of the
  inputs (at least one operand stays a tensor);
- ``attributes``: the attribute schema, in record order: ``fixed`` fields once
  each, then the ``repeated`` group any number of times (0 included). Types are
  ``i64`` (``b"i" || i64be``) and ``f32`` (``b"f" || u32be`` of the bits);
- ``kind``: ``elementwise``, ``reduction``, ``product``, ``movement``,
  ``constant`` or ``state``;
- ``definition``: the heading of the docs/exact.md section that defines it;
- ``kernel``: the ``agents.exact.kernels.Kernels`` method that computes it
  (``None`` for ``state``, which the tracer computes from tensor roots); every
  path in ``PATHS`` implements it.

``python -m agents.exact.optable`` prints the table as JSON (``table_json``),
format version ``OPTABLE_VERSION``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agents.exact.errors import ExactError
from agents.exact.trace import Op

OPTABLE_VERSION = 1
PATHS = ("cpu", "eager")
"""The kernel paths; each implements every op's ``kernel``."""

FieldType = Literal["i64", "f32"]
Kind = Literal["elementwise", "reduction", "product", "movement", "constant", "state"]

_BASIC = "Operations (op codes)"


@dataclass(frozen=True)
class Field:
    """One attribute of an op record."""

    name: str
    type: FieldType


@dataclass(frozen=True)
class AttributeSchema:
    """``fixed`` fields once each, then the ``repeated`` group zero or more times."""

    fixed: tuple[Field, ...] = ()
    repeated: tuple[Field, ...] = ()

    def describe(self) -> str:
        """The schema as text, e.g. ``value:f32 (dim:i64)*``."""
        parts = [f"{f.name}:{f.type}" for f in self.fixed]
        if self.repeated:
            parts.append("(" + " ".join(f"{f.name}:{f.type}" for f in self.repeated) + ")*")
        return " ".join(parts) or "-"


@dataclass(frozen=True)
class OpSpec:
    """One row of the table (module docstring)."""

    op: Op
    operands: tuple[str, ...] | None
    attributes: AttributeSchema
    kind: Kind
    definition: str
    immediates: bool = False

    @property
    def code(self) -> int:
        return int(self.op)

    @property
    def name(self) -> str:
        return self.op.name.lower()

    @property
    def arity(self) -> int | None:
        return None if self.operands is None else len(self.operands)

    @property
    def kernel(self) -> str | None:
        return None if self.op is Op.STATE else self.name

    def to_json(self) -> dict[str, Any]:
        def fields(group: tuple[Field, ...]) -> list[dict[str, str]]:
            return [{"name": f.name, "type": f.type} for f in group]

        return {
            "code": self.code,
            "name": self.name,
            "arity": self.arity,
            "operands": None if self.operands is None else list(self.operands),
            "immediates": self.immediates,
            "attributes": {
                "fixed": fields(self.attributes.fixed),
                "repeated": fields(self.attributes.repeated),
                "text": self.attributes.describe(),
            },
            "kind": self.kind,
            "definition": self.definition,
            "kernel": self.kernel,
            "paths": list(PATHS) if self.kernel is not None else [],
        }


_IMMEDIATE = AttributeSchema(repeated=(Field("slot", "i64"), Field("value", "f32")))
_NONE = AttributeSchema()
_AXIS = AttributeSchema(fixed=(Field("axis", "i64"),))
_CONV = (Field("kernel", "i64"), Field("stride", "i64"), Field("padding", "i64"))


def _binary(op: Op, operands: tuple[str, ...] = ("a", "b")) -> OpSpec:
    return OpSpec(op, operands, _IMMEDIATE, "elementwise", _BASIC, immediates=True)


def _unary(op: Op, definition: str = _BASIC) -> OpSpec:
    return OpSpec(op, ("x",), _NONE, "elementwise", definition)


OPS: tuple[OpSpec, ...] = (
    _binary(Op.ADD),
    _binary(Op.SUB),
    _binary(Op.MUL),
    _binary(Op.DIV),
    _binary(Op.MAXIMUM),
    _binary(Op.MINIMUM),
    _binary(Op.LT),
    _binary(Op.LE),
    _binary(Op.EQ),
    _binary(Op.SELECT, ("cond", "a", "b")),
    _binary(Op.LDEXP, ("x", "n")),
    _unary(Op.NEG),
    _unary(Op.ABS),
    _unary(Op.SQRT),
    _unary(Op.EXP, "exp (op `0x13`)"),
    _unary(Op.LOG, "log (op `0x14`)"),
    OpSpec(Op.SUM, ("x",), _AXIS, "reduction", _BASIC),
    OpSpec(Op.AMAX, ("x",), _AXIS, "reduction", _BASIC),
    OpSpec(Op.MATMUL_NT, ("a", "b"), _NONE, "product", _BASIC),
    OpSpec(
        Op.TRANSPOSE, ("x",), AttributeSchema(repeated=(Field("axis", "i64"),)), "movement", _BASIC
    ),
    OpSpec(
        Op.RESHAPE, ("x",), AttributeSchema(repeated=(Field("dim", "i64"),)), "movement", _BASIC
    ),
    OpSpec(Op.INDEX_SELECT, ("x", "index"), _AXIS, "movement", _BASIC),
    OpSpec(Op.TAKE_ALONG, ("x", "index"), _NONE, "movement", _BASIC),
    OpSpec(
        Op.ONE_HOT,
        ("index",),
        AttributeSchema(fixed=(Field("classes", "i64"),)),
        "movement",
        _BASIC,
    ),
    OpSpec(
        Op.CAUSAL_FILL, ("x",), AttributeSchema(fixed=(Field("value", "f32"),)), "movement", _BASIC
    ),
    OpSpec(Op.IM2COL, ("x",), AttributeSchema(fixed=_CONV), "movement", _BASIC),
    OpSpec(
        Op.COL2IM,
        ("cols",),
        AttributeSchema(
            fixed=(
                *_CONV,
                Field("batch", "i64"),
                Field("channels", "i64"),
                Field("height", "i64"),
                Field("width", "i64"),
            )
        ),
        "product",
        _BASIC,
    ),
    OpSpec(
        Op.SCATTER_ADD,
        ("src", "index"),
        AttributeSchema(fixed=(Field("rows", "i64"),)),
        "product",
        _BASIC,
    ),
    OpSpec(
        Op.FULL,
        (),
        AttributeSchema(fixed=(Field("value", "f32"),), repeated=(Field("dim", "i64"),)),
        "constant",
        _BASIC,
    ),
    OpSpec(Op.STATE, None, _NONE, "state", "Traces"),
)

BY_CODE: dict[int, OpSpec] = {spec.code: spec for spec in OPS}


def spec_of(op: Op | int) -> OpSpec:
    """The row of ``op`` (an ``Op`` or its code); ``ExactError`` for an unknown code."""
    spec = BY_CODE.get(int(op))
    if spec is None:
        raise ExactError(f"unknown op code {int(op):#06x}")
    return spec


def _matches(value: Any, type_: FieldType) -> bool:
    if type_ == "f32":
        return isinstance(value, np.float32)
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.float32)


def attribute_problems(op: Op | int, attributes: Sequence[Any], inputs: int) -> list[str]:
    """Why a record of ``op`` with these attributes and ``inputs`` tensor inputs does not fit
    the table (empty: it fits). Checks the attribute types and count against the schema, and
    for ops with immediates that the slots are distinct, in order, below the arity, and that
    tensors fill the other slots."""
    spec = spec_of(op)
    schema = spec.attributes
    problems: list[str] = []
    fixed, rest = list(attributes[: len(schema.fixed)]), list(attributes[len(schema.fixed) :])
    if len(fixed) < len(schema.fixed):
        return [f"{spec.name}: {len(attributes)} attributes, the schema {schema.describe()}"]
    group = len(schema.repeated)
    if (group == 0 and rest) or (group and len(rest) % group):
        return [f"{spec.name}: {len(attributes)} attributes, the schema {schema.describe()}"]
    expected = list(schema.fixed) + list(schema.repeated) * (len(rest) // group if group else 0)
    for i, (value, field) in enumerate(zip(attributes, expected, strict=True)):
        if not _matches(value, field.type):
            problems.append(f"{spec.name}: attribute {i} ({field.name}) is not {field.type}")
    if problems:
        return problems
    if spec.immediates:
        slots = [int(v) for v in rest[0::2]]
        arity = spec.arity or 0
        if slots != sorted(set(slots)) or any(not 0 <= s < arity for s in slots):
            problems.append(f"{spec.name}: immediate slots {slots} are not distinct, in order")
        if inputs + len(slots) != arity or inputs == 0:
            problems.append(
                f"{spec.name}: {inputs} tensor inputs and {len(slots)} immediates for "
                f"{arity} operands"
            )
    elif spec.arity is not None and inputs != spec.arity:
        problems.append(f"{spec.name}: {inputs} inputs, the op takes {spec.arity}")
    elif spec.op is Op.STATE and inputs != 0:
        problems.append(f"state: {inputs} inputs, a STATE record lists none")
    return problems


def table_json() -> dict[str, Any]:
    """The table as JSON-ready data: ``{"version": OPTABLE_VERSION, "ops": [row, ...]}``."""
    return {"version": OPTABLE_VERSION, "ops": [spec.to_json() for spec in OPS]}


if __name__ == "__main__":
    print(json.dumps(table_json(), indent=1))
