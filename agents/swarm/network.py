"""Devices and the links between them, read from a devices file.

A devices file (JSON) names every device with its compute throughput and memory,
and gives the measured one-way latency and bandwidth between every two of them,
either pair by pair or by rules over hosts and sites::

    {
      "name": "multiple-data-centers",
      "devices": [
        {"name": "ohio", "count": 32, "site": "ohio", "tflops": 125, "memory_gb": 16},
        {"name": "virginia", "count": 32, "site": "virginia", "tflops": 125, "memory_gb": 16}
      ],
      "links": {
        "same_site": {"latency_ms": 1, "bandwidth_gbps": 5},
        "sites": [{"between": ["ohio", "virginia"], "latency_ms": 11, "bandwidth_gbps": 1.12}]
      }
    }

An entry with ``count`` n > 1 stands for n devices named ``<name>-0`` …
``<name>-<n-1>``. The link between two devices is, in this order of precedence: a
``pairs`` entry naming both; ``same_host`` when both name the same host;
``same_site`` when both name the same site; the ``sites`` entry for their two
sites; ``default``. A pair that none of these covers is an error. ``pairs`` and
``sites`` entries are symmetric unless ``directed`` is true (then they give the
link from the first to the second only, and the other direction needs its own
entry or falls back to the next rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.swarm.errors import SwarmError, validation_problems

MAX_DEVICES = 4096
MAX_FILE_BYTES = 16 << 20

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@/-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinkSpec(_Strict):
    """One direction's measured latency (milliseconds) and bandwidth (gigabits per second)."""

    latency_ms: Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)]
    bandwidth_gbps: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]


class PairLink(LinkSpec):
    """A link between two named devices (``pairs``) or two named sites (``sites``)."""

    between: tuple[Name, Name]
    directed: bool = False


class Links(_Strict):
    """The rules that give every pair of devices its link."""

    same_host: LinkSpec | None = None
    same_site: LinkSpec | None = None
    sites: list[PairLink] = []
    pairs: list[PairLink] = []
    default: LinkSpec | None = None


class DeviceSpec(_Strict):
    """One device (or ``count`` alike): peak throughput in TFLOP/s, memory in GB."""

    name: Name
    count: Annotated[int, Field(ge=1, le=MAX_DEVICES)] = 1
    host: Name | None = None
    site: Name | None = None
    tflops: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]
    memory_gb: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]


class DevicesFile(_Strict):
    """The devices file."""

    name: Name
    description: str = ""
    devices: Annotated[list[DeviceSpec], Field(min_length=1)]
    links: Links

    @model_validator(mode="after")
    def _sizes(self) -> DevicesFile:
        if sum(d.count for d in self.devices) > MAX_DEVICES:
            raise ValueError(f"more than {MAX_DEVICES} devices")
        return self


@dataclass(frozen=True)
class Device:
    """One device of a network."""

    name: str
    host: str | None
    site: str | None
    tflops: float
    memory_gb: float


@dataclass(frozen=True, eq=False)
class Network:
    """Devices with one-way latency (seconds) and bandwidth (bytes per second) per ordered pair.

    ``latency_s[i, j]`` and ``bandwidth_bps[i, j]`` describe sending from device
    ``i`` to device ``j``; the diagonal is unused (zero latency, infinite bandwidth).
    """

    name: str
    devices: tuple[Device, ...]
    latency_s: NDArray[np.float64]
    bandwidth_bps: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.devices)
        if self.latency_s.shape != (n, n) or self.bandwidth_bps.shape != (n, n):
            raise SwarmError(f"link matrices must be {n}x{n}")
        off = ~np.eye(n, dtype=bool)
        if not np.all(np.isfinite(self.latency_s[off])) or np.any(self.latency_s[off] < 0):
            raise SwarmError("latencies must be finite and non-negative")
        if not np.all(np.isfinite(self.bandwidth_bps[off])) or np.any(self.bandwidth_bps[off] <= 0):
            raise SwarmError("bandwidths must be finite and positive")
        names = [d.name for d in self.devices]
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise SwarmError(f"device names repeat: {', '.join(dup[:5])}")
        self.latency_s.setflags(write=False)
        self.bandwidth_bps.setflags(write=False)

    @property
    def size(self) -> int:
        return len(self.devices)

    def index(self, name: str) -> int:
        for i, device in enumerate(self.devices):
            if device.name == name:
                return i
        raise SwarmError(f"no device named {name!r}")

    def transfer_s(self, nbytes: float) -> NDArray[np.float64]:
        """Seconds to send ``nbytes`` from ``i`` to ``j``: latency plus bytes over bandwidth."""
        out = self.latency_s + nbytes / self.bandwidth_bps
        np.fill_diagonal(out, 0.0)
        return out

    @staticmethod
    def from_matrices(
        name: str,
        latency_ms: Any,
        bandwidth_gbps: Any,
        devices: list[Device] | None = None,
    ) -> Network:
        """A network from full matrices in the file units (milliseconds, gigabits per second)."""
        lat = np.array(latency_ms, dtype=np.float64)
        bw = np.array(bandwidth_gbps, dtype=np.float64)
        n = lat.shape[0]
        if devices is None:
            devices = [Device(f"d{i}", None, None, 1.0, 1.0) for i in range(n)]
        lat = lat / 1e3
        bw = bw * 1e9 / 8
        np.fill_diagonal(lat, 0.0)
        np.fill_diagonal(bw, np.inf)
        return Network(name, tuple(devices), lat, bw)


def _expand(specs: list[DeviceSpec]) -> list[Device]:
    devices: list[Device] = []
    for spec in specs:
        names = [spec.name] if spec.count == 1 else [f"{spec.name}-{k}" for k in range(spec.count)]
        devices.extend(Device(n, spec.host, spec.site, spec.tflops, spec.memory_gb) for n in names)
    return devices


def build_network(spec: DevicesFile) -> Network:
    """Resolve the link rules of a devices file into full matrices."""
    devices = _expand(spec.devices)
    n = len(devices)
    index = {d.name: i for i, d in enumerate(devices)}
    if len(index) != n:
        raise SwarmError("device names repeat (a counted entry expands to <name>-<k>)")
    sites = {d.site for d in devices if d.site is not None}
    links = spec.links

    lat = np.full((n, n), np.nan)
    bw = np.full((n, n), np.nan)

    def put(i: int, j: int, link: LinkSpec) -> None:
        lat[i, j] = link.latency_ms
        bw[i, j] = link.bandwidth_gbps

    # Lowest precedence first, so that later rules overwrite earlier ones.
    if links.default is not None:
        lat[:] = links.default.latency_ms
        bw[:] = links.default.bandwidth_gbps
    site_of = np.array([d.site if d.site is not None else "" for d in devices], dtype=object)
    for entry in links.sites:
        a, b = entry.between
        for s in (a, b):
            if s not in sites:
                raise SwarmError(f"links.sites names site {s!r}, which no device is in")
        if a == b:
            raise SwarmError(f"links.sites: {a!r} to itself is links.same_site")
        ia = np.flatnonzero(site_of == a)
        ib = np.flatnonzero(site_of == b)
        lat[np.ix_(ia, ib)] = entry.latency_ms
        bw[np.ix_(ia, ib)] = entry.bandwidth_gbps
        if not entry.directed:
            lat[np.ix_(ib, ia)] = entry.latency_ms
            bw[np.ix_(ib, ia)] = entry.bandwidth_gbps
    for attribute, rule in (("site", links.same_site), ("host", links.same_host)):
        if rule is None:
            continue
        keys = [getattr(d, attribute) for d in devices]
        for key in {k for k in keys if k is not None}:
            members = np.array([i for i, k in enumerate(keys) if k == key])
            lat[np.ix_(members, members)] = rule.latency_ms
            bw[np.ix_(members, members)] = rule.bandwidth_gbps
    for entry in links.pairs:
        a, b = entry.between
        for name in (a, b):
            if name not in index:
                raise SwarmError(f"links.pairs names device {name!r}, which is not listed")
        if a == b:
            raise SwarmError(f"links.pairs: {a!r} to itself")
        put(index[a], index[b], entry)
        if not entry.directed:
            put(index[b], index[a], entry)

    np.fill_diagonal(lat, 0.0)
    np.fill_diagonal(bw, np.inf)
    missing = np.argwhere(np.isnan(lat))
    if len(missing):
        i, j = missing[0]
        raise SwarmError(
            f"no link from {devices[i].name} to {devices[j].name}: "
            "add a pairs, same_host, same_site, sites or default rule that covers it"
        )
    return Network.from_matrices(spec.name, lat, bw, devices)


def load_network(path: Path) -> Network:
    """Read and resolve a devices file; a bad file is a ``SwarmError`` naming the problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SwarmError(f"cannot read devices file {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_FILE_BYTES:
        raise SwarmError(f"devices file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SwarmError(f"devices file {path} is not JSON: {exc}") from exc
    try:
        spec = DevicesFile.model_validate(data)
    except ValidationError as exc:
        raise SwarmError(f"devices file {path}: {validation_problems(exc)}") from exc
    return build_network(spec)
