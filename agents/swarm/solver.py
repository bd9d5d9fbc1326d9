"""A solver that is a swarm: its ``[swarm]`` settings made a training backend.

``training_backend(settings, spec, inner, options)`` is the backend a solver trains
``spec`` with: a ``SwarmBackend`` of the settings' shape where the swarm can train the
task (its slices and stages fit), else the inner backend in the solver's own process,
with the reason. Either computes the spec's arithmetic, so a proof is the same whichever
trains it (exact mode: the same bytes), and a resumed task may switch.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from agents.errors import ConfigError
from agents.learning.backends import Backend, BackendError, get_backend
from agents.learning.spec import TaskSpec
from agents.node.config import SwarmSettings
from agents.swarm.errors import SwarmError
from agents.swarm.plan import PlanFile, load_plan
from agents.swarm.training import SwarmBackend, check_listen

KEY_BYTES = 32


def new_key() -> str:
    """A fresh swarm key, as the hex a key file holds."""
    return secrets.token_hex(KEY_BYTES)


def read_key(path: Path) -> bytes:
    """The key in ``path`` (hex; surrounding whitespace ignored)."""
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the swarm key file {path}: {exc.strerror or exc}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"swarm key file {path} does not hold hex digits") from None
    if len(key) < 16:
        raise ConfigError(f"swarm key file {path} holds {len(key)} bytes; at least 16 are needed")
    return key


def swarm_backend(settings: SwarmSettings, inner: str, options: dict[str, Any]) -> SwarmBackend:
    """The swarm the settings describe, training with ``inner`` and its ``options``;
    ``ConfigError`` when the settings do not make one."""
    plan: PlanFile | None = None
    if settings.plan is not None:
        try:
            plan = load_plan(settings.plan)
        except SwarmError as exc:
            raise ConfigError(str(exc)) from None
        if settings.workers and settings.workers != plan.stages * plan.replicas:
            raise ConfigError(
                f"swarm.workers is {settings.workers}, the plan has "
                f"{plan.stages * plan.replicas} devices"
            )
    key = read_key(settings.key_file) if settings.key_file is not None else None
    workers = settings.workers or (plan.stages * plan.replicas if plan is not None else 0)
    if workers < 1:
        raise ConfigError("a swarm needs swarm.workers, or a plan with its devices")
    try:
        return SwarmBackend(
            workers,
            inner,
            stages=settings.stages,
            plan=plan,
            listen=settings.listen,
            key=key,
            latency_s=settings.latency_ms / 1000,
            step_timeout_s=settings.step_timeout,
            **options,
        )
    except BackendError as exc:
        raise ConfigError(f"[swarm]: {exc}") from None


def check_swarm(settings: SwarmSettings, inner: str, options: dict[str, Any]) -> None:
    """``ConfigError`` when the settings do not make a swarm, or its session could not listen
    where they say (checked once, before an agent starts)."""
    swarm = swarm_backend(settings, inner, options)
    if swarm.listen is not None:
        try:
            check_listen(swarm.listen)
        except BackendError as exc:
            raise ConfigError(f"swarm.listen: {exc}") from None


def training_backend(
    settings: SwarmSettings | None, spec: TaskSpec, inner: str, options: dict[str, Any]
) -> tuple[Backend, str | None]:
    """The backend to train ``spec`` with, and why it is not the swarm (``None`` when it is)."""
    if settings is None or not settings.enabled:
        return get_backend(inner, **options), None
    swarm = swarm_backend(settings, inner, options)
    try:
        swarm.shape(spec)
    except BackendError as exc:
        return get_backend(inner, **options), str(exc)
    return swarm, None
