"""``veritrain store``: compute CIDs, add, read, pin and serve artifacts."""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import click

from agents.store.base import AddOptions, ArtifactStore, StoreError
from agents.store.config import STORE_ENV, default_store_path, open_store, store_spec
from agents.store.embedded import EmbeddedStore
from agents.store.importer import import_file, import_stream
from agents.store.kubo import KuboStore
from agents.store.server import DEFAULT_MAX_UPLOAD, DEFAULT_PORT, RpcServer, ServerLimits

F = TypeVar("F", bound=Callable[..., Any])

_STORE_HELP = (
    f"Store to use: a directory (embedded store) or http(s)://host:port (Kubo RPC API). "
    f"Default: ${STORE_ENV}, else {default_store_path()}."
)


def _store_option(function: F) -> F:
    return click.option("--store", "store", metavar="PATH|URL", help=_STORE_HELP)(function)


def _add_options(function: F) -> F:
    """The ``ipfs add`` options that change a CID."""
    decorators = [
        click.option(
            "--cid-version",
            type=click.IntRange(0, 1),
            default=0,
            show_default=True,
            help="CID version; 1 implies raw leaves unless --no-raw-leaves.",
        ),
        click.option(
            "--chunk-size",
            type=int,
            default=262_144,
            show_default=True,
            help="Fixed chunk size in bytes (Kubo's --chunker=size-N).",
        ),
        click.option(
            "--max-links",
            type=int,
            default=174,
            show_default=True,
            help="Most children per node of the balanced DAG (Kubo's --max-file-links).",
        ),
        click.option(
            "--raw-leaves/--no-raw-leaves",
            default=None,
            help="Leaves as raw blocks (default: only with --cid-version 1).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def _options(
    cid_version: int, chunk_size: int, max_links: int, raw_leaves: bool | None
) -> AddOptions:
    return AddOptions(
        cid_version=cid_version, chunk_size=chunk_size, max_links=max_links, raw_leaves=raw_leaves
    )


def _embedded(store: ArtifactStore, command: str) -> EmbeddedStore:
    if not isinstance(store, EmbeddedStore):
        raise StoreError(
            f"`veritrain store {command}` works on an embedded store, and {store!r} is not one"
        )
    return store


@click.group()
def store() -> None:
    """Add, read, pin and serve artifacts (IPFS-exact CIDs)."""


@store.command("cid")
@click.argument("file")
@_add_options
def cid_command(
    file: str, cid_version: int, chunk_size: int, max_links: int, raw_leaves: bool | None
) -> None:
    """Print the CID `ipfs add --only-hash` prints for FILE (`-`: standard input)."""
    options = _options(cid_version, chunk_size, max_links, raw_leaves)
    if file == "-":
        result = import_stream(sys.stdin.buffer, options)
    else:
        result = import_file(Path(file), options)
    click.echo(str(result.cid))


def _add_one(target: ArtifactStore, file: str, options: AddOptions, pin: bool) -> str:
    if isinstance(target, EmbeddedStore):
        if file == "-":
            return target.put_stream(sys.stdin.buffer, options, pin=pin)
        return target.put_file(Path(file), options, pin=pin)
    if not isinstance(target, KuboStore):
        raise StoreError(f"cannot add to {target!r}")
    if file != "-":
        return target.put_file(Path(file), options, pin=pin)
    # A remote add retries by sending the file again, so standard input is spooled first.
    with tempfile.NamedTemporaryFile(prefix="veritrain-stdin-") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        return target.put_file(Path(spool.name), options, pin=pin)


@store.command("add")
@click.argument("files", nargs=-1, required=True)
@_add_options
@click.option("--pin/--no-pin", default=True, show_default=True, help="Pin what is added.")
@_store_option
def add_command(
    files: tuple[str, ...],
    cid_version: int,
    chunk_size: int,
    max_links: int,
    raw_leaves: bool | None,
    pin: bool,
    store: str | None,
) -> None:
    """Add each FILE (`-`: standard input) and print its CID, one per line."""
    options = _options(cid_version, chunk_size, max_links, raw_leaves)
    target = open_store(store)
    for file in files:
        click.echo(_add_one(target, file, options, pin))


@store.command("get")
@click.argument("cid")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file (it appears only once complete) instead of standard output.",
)
@_store_option
def get_command(cid: str, output: Path | None, store: str | None) -> None:
    """Write the content named by CID, every block checked against its hash."""
    target = open_store(store)
    if output is not None:
        target.get_file(cid, output)
        return
    sink: BinaryIO = sys.stdout.buffer
    for piece in target.open(cid):
        sink.write(piece)
    sink.flush()


@store.command("pin")
@click.argument("cids", nargs=-1, required=True)
@_store_option
def pin_command(cids: tuple[str, ...], store: str | None) -> None:
    """Pin each CID (its whole DAG must be present)."""
    target = open_store(store)
    for cid in cids:
        target.pin(cid)
        click.echo(f"pinned {cid}")


@store.command("unpin")
@click.argument("cids", nargs=-1, required=True)
@_store_option
def unpin_command(cids: tuple[str, ...], store: str | None) -> None:
    """Unpin each CID; garbage collection may then remove its blocks."""
    target = open_store(store)
    for cid in cids:
        target.unpin(cid)
        click.echo(f"unpinned {cid}")


@store.command("pins")
@_store_option
def pins_command(store: str | None) -> None:
    """List pinned CIDs, one per line."""
    for cid in open_store(store).pins():
        click.echo(cid)


@store.command("gc")
@_store_option
def gc_command(store: str | None) -> None:
    """Remove every block of an embedded store that no pin reaches."""
    report = _embedded(open_store(store), "gc").gc()
    click.echo(
        f"removed {report.removed_blocks} blocks ({report.removed_bytes} bytes) and "
        f"{report.removed_temp_files} temporary files; kept {report.kept_blocks} blocks"
    )


@store.command("verify")
@click.option("--repair", is_flag=True, help="Delete corrupt blocks (add their content again).")
@_store_option
def verify_command(repair: bool, store: str | None) -> None:
    """Check every block of an embedded store against its hash."""
    report = _embedded(open_store(store), "verify").verify(repair=repair)
    for path in report.corrupt:
        click.echo(f"corrupt: {path}")
    click.echo(
        f"checked {report.checked_blocks} blocks: {len(report.corrupt)} corrupt"
        + (f", {report.removed} removed" if repair else "")
    )
    if report.corrupt and not repair:
        raise StoreError(f"{len(report.corrupt)} corrupt blocks; `--repair` removes them")


@store.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port (0: any free port; the address is printed).",
)
@click.option(
    "--max-upload",
    type=click.IntRange(1),
    default=DEFAULT_MAX_UPLOAD,
    show_default=True,
    help="Largest add request body, in bytes.",
)
@click.option(
    "--max-clients",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Concurrent requests served; more get HTTP 503.",
)
@click.option(
    "--allow-origin",
    "allowed_origins",
    multiple=True,
    metavar="ORIGIN",
    help="Web origin allowed to call the API (none by default).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
@_store_option
def serve_command(
    host: str,
    port: int,
    max_upload: int,
    max_clients: int,
    allowed_origins: tuple[str, ...],
    verbose: bool,
    store: str | None,
) -> None:
    """Serve an embedded store over the Kubo RPC API subset (add, cat, block, pin, version)."""
    spec = store_spec(store)
    if "://" in spec:
        raise StoreError(f"`store serve` serves an embedded store (a directory), not {spec}")
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    limits = ServerLimits(
        max_upload_bytes=max_upload, max_clients=max_clients, allowed_origins=allowed_origins
    )
    server = RpcServer(EmbeddedStore(Path(spec)), host, port, limits)
    if host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"warning: listening on {host}: the API has no authentication; anyone who can "
            "reach it can add and pin content",
            err=True,
        )
    click.echo(f"serving {spec} at {server.url}/api/v0", err=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo("stopped", err=True)
