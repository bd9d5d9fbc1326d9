"""The deployment parameters' table in docs/contracts.md states the defaults that
``scripts.deploy.ProtocolParameters`` deploys, one row per field, in the struct's order."""

from __future__ import annotations

import dataclasses
import re
import struct

from agents.devnet.anvil import REPO_ROOT
from scripts.deploy import ProtocolParameters

ROW = re.compile(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|")


def _documented() -> dict[str, tuple[str, str]]:
    text = (REPO_ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    section = text.split("## Parameters", 1)[1].split("\n## ", 1)[0]
    return {
        m[1]: (m[2].strip(), m[3].strip())
        for line in section.splitlines()
        if (m := ROW.match(line))
    }


def _value(default: str, unit: str) -> int:
    """The number a default cell starts with, in the field's own unit."""
    if unit == "binary32":
        bits: int = struct.unpack(">I", struct.pack(">f", float(default.split()[0])))[0]
        return bits
    power = re.match(r"^10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", default)
    if power:
        exponent = int(power[1].translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))
        return int(10**exponent)
    number = re.match(r"^[\d,]+", default)
    assert number, default
    return int(number[0].replace(",", ""))


def test_every_parameter_is_documented_in_struct_order() -> None:
    fields = [f.name for f in dataclasses.fields(ProtocolParameters)]
    assert list(_documented()) == fields


def test_the_documented_defaults_are_the_deployed_ones() -> None:
    deployed = ProtocolParameters().as_dict()
    documented = {name: _value(*cells) for name, cells in _documented().items()}
    wrong = {n: (documented[n], deployed[n]) for n in deployed if documented.get(n) != deployed[n]}
    assert not wrong, f"docs/contracts.md default vs deployed: {wrong}"
