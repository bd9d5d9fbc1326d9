"""Files that appear whole or not at all: the one atomic write every component uses.

``write_atomically`` writes to a temporary file in the target's directory (its
name starts with ``TEMP_PREFIX``, so directory scans can skip or sweep leftovers
of a killed process) and renames it over the target: a reader sees the old file
or the whole new one, never a part, and a failure leaves no temporary behind.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

TEMP_PREFIX = ".tmp-"
Buffer = bytes | bytearray | memoryview


def _write_all(fd: int, parts: Iterable[Buffer]) -> None:
    if isinstance(parts, Sequence):
        # A few parts at once (a block's header and data): one system call where it fits.
        views = [memoryview(p) for p in parts if len(p)]
        while views:
            written = os.writev(fd, views)
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]
        return
    for part in parts:
        view = memoryview(part)
        while len(view):
            view = view[os.write(fd, view) :]


def write_atomically(
    path: Path,
    data: Buffer | Iterable[Buffer],
    *,
    fsync: bool = False,
    mode: int = 0o644,
) -> None:
    """Write ``data`` (bytes, or an iterable of byte pieces, streamed) to ``path`` atomically.

    ``fsync`` makes the content durable before the rename (the rename itself is made
    durable by ``fsync_directory`` of the parent). Raises ``OSError`` (the caller names
    what failed); the temporary file is removed on any failure.
    """
    path = Path(path)
    tmp = path.with_name(
        f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{threading.get_ident()}.{secrets.token_hex(4)}"
    )
    parts: Iterable[Buffer] = (data,) if isinstance(data, bytes | bytearray | memoryview) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            _write_all(fd, parts)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync_directory(path: Path) -> None:
    """Make a directory's entries (new names, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
