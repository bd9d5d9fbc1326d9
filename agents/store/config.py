"""Choosing the backend: one string names a store, whatever component asks for it.

- ``http://host:port`` or ``https://...``: a Kubo node's RPC API (or ``veritrain store
  serve``), with or without the ``/api/v0`` suffix;
- anything else: a directory holding an embedded store (created if new or empty).

:func:`open_store` reads the spec from its argument, else from the ``VERITRAIN_STORE``
environment variable, else uses the per-user default directory
(``$XDG_DATA_HOME/veritrain/store``, i.e. ``~/.local/share/veritrain/store``), which every
agent and command on one machine shares, as a devnet needs.
"""

from __future__ import annotations

import os
from pathlib import Path

from agents.errors import ConfigError
from agents.store.base import ArtifactStore

STORE_ENV = "VERITRAIN_STORE"


def default_store_path() -> Path:
    """The embedded store used when nothing is configured."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "veritrain" / "store"


def store_spec(spec: str | os.PathLike[str] | None = None) -> str:
    """The spec :func:`open_store` would use: the argument, ``$VERITRAIN_STORE``, or the default."""
    if spec is not None and str(spec).strip():
        return str(spec).strip()
    env = os.environ.get(STORE_ENV, "").strip()
    if env:
        return env
    return str(default_store_path())


def open_store(
    spec: str | os.PathLike[str] | None = None, *, retrieval_timeout: float | None = None
) -> ArtifactStore:
    """Open the store named by ``spec`` (see the module docstring).

    ``retrieval_timeout``: seconds a Kubo node may take to fetch content it lacks from its
    peers before the content counts as unavailable (``None``: the store's default, 120 s);
    an embedded store has no peers and ignores it.
    """
    text = store_spec(spec)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ConfigError(
                f"store {text!r}: unsupported scheme {scheme!r}; use http(s)://host:port for a "
                "Kubo RPC API or a directory path for the embedded store"
            )
        from agents.store.kubo import KuboStore

        if retrieval_timeout is None:
            store: ArtifactStore = KuboStore(text)
        else:
            store = KuboStore(text, retrieval_timeout=retrieval_timeout)
        return store
    from agents.store.embedded import EmbeddedStore

    return EmbeddedStore(Path(text))
