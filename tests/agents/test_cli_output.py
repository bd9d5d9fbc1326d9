"""Commands print strict JSON: no ``Infinity`` or ``NaN`` that other parsers refuse."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.cli import main
from agents.cli.output import finite, json_text
from agents.learning.profiler import Observation, Profile
from tests.learning.conftest import real_spec

CLI = Path(__file__).resolve().parents[2] / "agents" / "cli"


def strict_loads(text: str) -> Any:
    """Parse as RFC 8259 JSON: Python's extensions (Infinity, NaN) are refused."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (1.5, 1.5),
        (0.0, 0.0),
        (-0.0, -0.0),
        (5e-324, 5e-324),
        (1.7976931348623157e308, 1.7976931348623157e308),
        ({"a": [1, math.inf, (2.0, -math.inf)]}, {"a": [1, "inf", [2.0, "-inf"]]}),
        ({"nested": {"deep": [{"x": math.nan}]}}, {"nested": {"deep": [{"x": "nan"}]}}),
        ("inf", "inf"),
        (True, True),
        (None, None),
    ],
)
def test_non_finite_numbers_become_strings(value: Any, expected: Any) -> None:
    assert finite(value) == expected or (value != value and finite(value) == "nan")
    parsed = strict_loads(json_text(value))
    assert parsed == expected
    if isinstance(expected, float):
        assert math.copysign(1.0, parsed) == math.copysign(1.0, expected)


def test_anything_non_finite_that_slips_past_fails_loudly() -> None:
    class Odd:
        pass

    with pytest.raises(ValueError, match="not JSON compliant"):
        json_text({"x": Odd()}, default=lambda _: math.inf)


def test_pol_profile_prints_strict_json_when_a_drift_is_infinite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(real_spec().model_dump(mode="json")))
    diverged = Profile(
        tau=1e-3,
        reference="native",
        window=[0, 1],
        drift=[Observation("native", 0, 2e-4), Observation("native", 1, math.inf)],
        cheats=[Observation("cheat", 0, math.inf)],
        warnings=["segment 1 diverged"],
    )
    monkeypatch.setattr("agents.learning.profiler.profile", lambda task, budget: diverged)
    main(["pol", "profile", "--spec", str(spec_path)])
    out = strict_loads(capsys.readouterr().out)
    assert out["max_drift"] == "inf" and out["drift"][1]["distance"] == "inf"
    assert out["cheat_min_distance"] == "inf" and out["tau"] == 1e-3


def test_every_json_printing_command_goes_through_the_strict_printer() -> None:
    offenders = []
    for path in sorted(CLI.glob("*.py")):
        if path.name == "output.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("dumps", "dump")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "json"
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == [], "use agents.cli.output.echo_json: " + ", ".join(offenders)
