"""Where legacy-SSE instructions run with dirty upper vector state, read from x86 assembly.

The SHA extensions (``sha256rnds2``, ``sha256msg1/2``) have no VEX encoding. A CPU that
has run 256- or 512-bit code keeps the upper halves of its vector registers "dirty"
until a ``vzeroupper``, and an SSE instruction in that state can pay a state-transition
penalty on every execution. This reads the AT&T assembly numba's ``inspect_asm`` returns
and follows every path (jumps, fall-throughs, jump tables) to each legacy-SSE
instruction, conservatively: a function's entry and every call may leave the state
dirty, any instruction with a ymm or zmm operand makes it dirty, and only ``vzeroupper``
or ``vzeroall`` makes it clean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LABEL = re.compile(r'^\s*("[^"]*"|[^\s#"][^\s:#]*):')
_WIDE = re.compile(r"%[yz]mm\d+")
_JUMP_TABLE_ENTRY = re.compile(r"^\s*\.(?:quad|long)\s+(\.LBB\w+)")


@dataclass
class _Block:
    label: str
    # A function's entry: nothing is known of the state the caller leaves.
    entry: bool
    lines: list[tuple[int, str]] = field(default_factory=list)
    successors: list[str] = field(default_factory=list)
    falls_through: bool = True


def _instruction(line: str) -> tuple[str, str] | None:
    """(mnemonic, operands) of an instruction line, None for labels, directives, comments."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith(".") or _LABEL.match(line):
        return None
    mnemonic, *operands = text.split(None, 1)
    return mnemonic, operands[0] if operands else ""


def _blocks(asm: str) -> tuple[list[_Block], list[str]]:
    """The code's blocks in order, and every label a jump table lists."""
    blocks: list[_Block] = [_Block("<start>", entry=True)]
    table_targets: list[str] = []
    for number, line in enumerate(asm.splitlines(), start=1):
        label = _LABEL.match(line)
        if label:
            name = label.group(1)
            blocks.append(_Block(name, entry=not name.startswith(".L")))
            continue
        table_entry = _JUMP_TABLE_ENTRY.match(line)
        if table_entry:
            table_targets.append(table_entry.group(1))
            continue
        if _instruction(line) is not None:
            blocks[-1].lines.append((number, line))
    return blocks, table_targets


def dirty_sse_instructions(asm: str) -> list[str]:
    """Every legacy-SSE instruction (an xmm operand, no ``v`` prefix) that some path reaches
    with dirty upper state, as ``line N: instruction``; empty where there is none."""
    blocks, table_targets = _blocks(asm)
    index = {block.label: i for i, block in enumerate(blocks)}
    for block in blocks:
        for _, line in block.lines:
            parsed = _instruction(line)
            assert parsed is not None
            mnemonic, operands = parsed
            if mnemonic.startswith("j"):
                if operands.startswith("*"):
                    # Through a register (a tail call) or a jump table: any table's label.
                    block.successors += table_targets
                else:
                    block.successors.append(operands)
                if mnemonic in ("jmp", "jmpq"):
                    block.falls_through = False
            elif mnemonic.startswith(("ret", "ud2")):
                block.falls_through = False
    dirty_in = [block.entry for block in blocks]
    found: set[str] = set()  # a block reached twice, dirty, reports its lines once
    reached = [block.entry for block in blocks]
    pending = [i for i, block in enumerate(blocks) if block.entry]
    while pending:
        i = pending.pop()
        block = blocks[i]
        dirty = dirty_in[i]
        for number, line in block.lines:
            parsed = _instruction(line)
            assert parsed is not None
            mnemonic, operands = parsed
            if mnemonic in ("vzeroupper", "vzeroall"):
                dirty = False
            elif mnemonic.startswith("call") or _WIDE.search(operands):
                dirty = True
            elif dirty and "%xmm" in operands and not mnemonic.startswith("v"):
                found.add(f"line {number}: {line.strip()}")
        targets = [index[s] for s in block.successors if s in index]
        if block.falls_through and i + 1 < len(blocks):
            targets.append(i + 1)
        for j in targets:
            if not reached[j] or (dirty and not dirty_in[j]):
                reached[j] = True
                dirty_in[j] = dirty_in[j] or dirty
                pending.append(j)
    return sorted(found, key=lambda text: int(text.split()[1].rstrip(":")))


def sse_instructions(asm: str) -> int:
    """How many legacy-SSE instructions the assembly holds (what the check looked at)."""
    count = 0
    for line in asm.splitlines():
        parsed = _instruction(line)
        if parsed and "%xmm" in parsed[1] and not parsed[0].startswith("v"):
            count += 1
    return count
