"""Devices files: link rules, their precedence, and clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.swarm.errors import SwarmError
from agents.swarm.network import DevicesFile, Network, build_network, load_network

from .conftest import EXAMPLES, SCENARIOS


def _build(data: dict[str, Any]) -> Network:
    return build_network(DevicesFile.model_validate(data))


def _dev(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "tflops": 100, "memory_gb": 16, **extra}


def test_rules_apply_in_order_of_precedence() -> None:
    net = _build(
        {
            "name": "t",
            "devices": [
                _dev("a", host="h1", site="s1"),
                _dev("b", host="h1", site="s1"),
                _dev("c", host="h2", site="s1"),
                _dev("d", site="s2"),
                _dev("e", site="s3"),
            ],
            "links": {
                "same_host": {"latency_ms": 0, "bandwidth_gbps": 100},
                "same_site": {"latency_ms": 1, "bandwidth_gbps": 10},
                "sites": [{"between": ["s1", "s2"], "latency_ms": 20, "bandwidth_gbps": 2}],
                "pairs": [
                    {"between": ["a", "b"], "latency_ms": 3, "bandwidth_gbps": 50},
                    {"between": ["c", "d"], "latency_ms": 7, "bandwidth_gbps": 4, "directed": True},
                ],
                "default": {"latency_ms": 100, "bandwidth_gbps": 0.8},
            },
        }
    )
    idx = {d.name: i for i, d in enumerate(net.devices)}

    def link(x: str, y: str) -> tuple[float, float]:
        i, j = idx[x], idx[y]
        return float(net.latency_s[i, j]), float(net.bandwidth_bps[i, j])

    assert link("a", "b") == (0.003, 50e9 / 8)  # pairs beats same_host
    assert link("b", "c") == (0.001, 10e9 / 8)  # same_site (different hosts)
    assert link("c", "d") == (0.007, 4e9 / 8)  # directed pair, one way...
    assert link("d", "c") == (0.020, 2e9 / 8)  # ...the other way falls back to sites
    assert link("a", "d") == (0.020, 2e9 / 8)  # sites, symmetric
    assert link("d", "e") == (0.100, 0.8e9 / 8)  # default
    assert np.all(np.diag(net.latency_s) == 0) and np.all(np.isinf(np.diag(net.bandwidth_bps)))


def test_counted_entries_expand() -> None:
    net = _build(
        {
            "name": "t",
            "devices": [_dev("gpu", count=3, site="x"), _dev("cpu")],
            "links": {"default": {"latency_ms": 1, "bandwidth_gbps": 1}},
        }
    )
    assert [d.name for d in net.devices] == ["gpu-0", "gpu-1", "gpu-2", "cpu"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"devices": [_dev("a"), _dev("b")], "links": {}}, "no link from a to b"),
        (
            {
                "devices": [_dev("a"), _dev("a")],
                "links": {"default": {"latency_ms": 1, "bandwidth_gbps": 1}},
            },
            "repeat",
        ),
        (
            {
                "devices": [_dev("a", site="x"), _dev("b", site="y")],
                "links": {"sites": [{"between": ["x", "z"], "latency_ms": 1, "bandwidth_gbps": 1}]},
            },
            "site 'z'",
        ),
        (
            {
                "devices": [_dev("a"), _dev("b")],
                "links": {"pairs": [{"between": ["a", "q"], "latency_ms": 1, "bandwidth_gbps": 1}]},
            },
            "device 'q'",
        ),
        (
            {
                "devices": [_dev("x", count=2), _dev("x-1")],
                "links": {"default": {"latency_ms": 1, "bandwidth_gbps": 1}},
            },
            "repeat",
        ),
    ],
)
def test_bad_links_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SwarmError, match=message):
        _build({"name": "t", **data})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"name": "t", "devices": [], "links": {}}', "devices"),
        (
            '{"name": "t", "devices": [{"name": "a", "tflops": 0, "memory_gb": 1}], "links": {}}',
            "tflops",
        ),
        (
            '{"name": "t", "devices": [{"name": "a", "tflops": 1, "memory_gb": 1}],'
            ' "links": {}, "x": 1}',
            "x: Extra inputs",
        ),
        (
            '{"name": "t", "devices": [{"name": "a", "tflops": 1, "memory_gb": 1}],'
            ' "links": {"default": {"latency_ms": -1, "bandwidth_gbps": 1}}}',
            "latency_ms",
        ),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "devices.json"
    path.write_text(text)
    with pytest.raises(SwarmError, match=message):
        load_network(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SwarmError, match="cannot read"):
        load_network(tmp_path / "nope.json")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_paper_scenarios_load(scenario: str) -> None:
    net = load_network(EXAMPLES / f"{scenario}.json")
    assert net.size == 64
    off = ~np.eye(64, dtype=bool)
    assert np.all(net.bandwidth_bps[off] > 0) and np.all(net.latency_s[off] >= 0)
    data = json.loads((EXAMPLES / f"{scenario}.json").read_text())
    assert data["name"] == scenario
