"""Strict JSON for artifacts another party wrote: a proof's manifest, tensor-file headers, datasets.

Python's ``json`` module is lenient where an attacker gains from leniency, so every
JSON document that comes from a solver or a submitter is read with these rules:

- UTF-8 only; strings must be valid Unicode (no lone surrogates, which cannot be
  written back as UTF-8);
- no ``NaN``, ``Infinity`` or ``-Infinity``, and no fractions or exponents at all:
  every number in these formats is an integer, and an integer has at most
  ``MAX_INTEGER_DIGITS`` digits (a 5,000-digit number is refused before it is
  converted);
- no key appears twice in one object (two readers that keep the first or the last
  would disagree);
- nesting deeper than the format allows is refused, and so is nesting too deep for
  the parser, with a message instead of a ``RecursionError``.

The bytes are bounded by the caller before parsing (every format has a size the
spec implies), so the memory the parsed value takes is bounded by a small multiple
of that size.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from agents.errors import VeritrainError

MAX_INTEGER_DIGITS = 20  # every integer of these formats fits 64 bits


class _RefusedError(ValueError):
    """Raised inside the parser's hooks; turned into the caller's error class."""


def _integer(text: str) -> int:
    digits = text.removeprefix("-")
    if len(digits) > MAX_INTEGER_DIGITS:
        raise _RefusedError(f"an integer of {len(digits)} digits")
    return int(text)


def _no_fraction(text: str) -> NoReturn:
    raise _RefusedError(f"the number {text[:32]} (only integers are allowed)")


def _no_constant(text: str) -> NoReturn:
    raise _RefusedError(f"{text} (not JSON)")


def _text(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise _RefusedError("a string that is not valid Unicode") from None
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _RefusedError(f"the key {key[:64]!r} twice in one object")
        out[_text(key)] = value
    return out


def _walk(value: Any) -> int:
    """The nesting depth of a parsed value (a scalar is 0), checking every string on the way.

    Level by level, without recursion, and holding one pointer per container of the next
    level: the walk adds little to the memory the parsed value takes.
    """
    depth = 0
    level: list[Any] = [value]
    while level:
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, str):
                _text(item)
                continue
            if not isinstance(item, (dict, list)):
                continue
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, str):
                    _text(child)
                elif isinstance(child, (dict, list)):
                    deeper.append(child)
        if any(isinstance(item, (dict, list)) for item in level):
            depth += 1
        level = deeper
    return depth


def loads(
    data: bytes | bytearray | memoryview,
    what: str,
    *,
    max_depth: int,
    error: type[VeritrainError],
) -> Any:
    """Parse ``data`` under the rules above; raises ``error`` naming ``what`` otherwise."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            parse_int=_integer,
            parse_float=_no_fraction,
            parse_constant=_no_constant,
            object_pairs_hook=_object,
        )
        depth = _walk(value)
    except _RefusedError as exc:
        raise error(f"{what}: JSON holds {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(
            f"{what}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise error(f"{what}: JSON nested too deeply") from None
    if depth > max_depth:
        raise error(f"{what}: JSON nested {depth} deep, the format allows {max_depth}")
    return value
