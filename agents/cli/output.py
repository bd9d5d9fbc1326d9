"""What commands print for machines: strict JSON (RFC 8259), whatever numbers a result holds.

JSON has no infinities and no NaN; Python's ``json`` would print ``Infinity`` and ``NaN``,
which other parsers refuse. A non-finite number is printed as the string ``"inf"``,
``"-inf"`` or ``"nan"`` (the spelling results such as ``pol profile``'s already use), and the
encoder runs with ``allow_nan=False``, so anything that slips past fails loudly instead of
printing invalid JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import click


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (in dicts, lists, tuples) spelled as a string."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_text(
    value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None
) -> str:
    """``value`` as indented strict JSON (see the module docstring)."""
    return json.dumps(
        finite(value), indent=2, sort_keys=sort_keys, default=default, allow_nan=False
    )


def echo_json(
    value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None
) -> None:
    """Print ``value`` as strict JSON on standard output."""
    click.echo(json_text(value, sort_keys=sort_keys, default=default))
