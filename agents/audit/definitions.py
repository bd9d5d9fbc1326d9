"""An op's definition as docs/exact.md states it, for the page of a game.

The op table (``agents.exact.optable``) names each op's operands, kind and the docs/exact.md
section that defines it; docs/exact.md's table of op codes gives its one-line definition.
``op_definition`` joins them (the docs are read from the checkout; without them the op
table's facts alone are given).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agents.exact.optable import spec_of
from agents.exact.trace import Op

DOCS = Path(__file__).resolve().parents[2] / "docs" / "exact.md"
_ROW = re.compile(r"^\|\s*`0x([0-9A-Fa-f]+)`\s*\|\s*`([a-z0-9_]+)`\s*\|(.*)\|\s*$")


@dataclass(frozen=True)
class OpDefinition:
    """What docs/exact.md says of one op."""

    code: int
    name: str
    operands: str
    attributes: str
    definition: str
    kind: str
    section: str
    rules: tuple[str, ...] = ()


def _cells(rest: str) -> list[str]:
    return [c.strip().replace("`", "") for c in rest.split("|")]


def op_definition(op: Op, docs: Path = DOCS) -> OpDefinition:
    """The definition of ``op`` (docs/exact.md's row of its op code, and the op table)."""
    spec = spec_of(op)
    operands = ", ".join(spec.operands) if spec.operands is not None else "the state's tensors"
    found = OpDefinition(int(op), spec.name, operands, "", "", spec.kind, spec.definition)
    try:
        lines = docs.read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    # Rows of the arithmetic rules that spell the op out (``matmul_nt(A, B) …``).
    rules = tuple(
        " — ".join(c for c in _cells(line.strip().strip("|")) if c)
        for line in lines
        if line.startswith("|") and _ROW.match(line) is None and f"`{spec.name}(" in line
    )
    for line in lines:
        match = _ROW.match(line)
        if match is None or int(match.group(1), 16) != int(op):
            continue
        cells = _cells(match.group(3))
        if len(cells) >= 3:
            return OpDefinition(
                int(op),
                match.group(2),
                cells[0],
                cells[1],
                cells[2],
                spec.kind,
                spec.definition,
                rules,
            )
    return OpDefinition(
        found.code, found.name, found.operands, "", "", spec.kind, spec.definition, rules
    )
