"""The Kubo backend: an :class:`ArtifactStore` over Kubo's HTTP RPC API (``/api/v0``).

Also talks to ``veritrain store serve``, which answers the same subset. Built on
``requests``; ``ipfshttpclient`` is not used: it is unmaintained (last release 2021) and
its ``connect()`` refuses every daemon newer than go-ipfs 0.8.

- Uploads stream the file with a known length; the client computes the CID of what it
  sends while sending it, and refuses the node's answer unless it names the same CID.
- Reads stream ``/cat`` and check every leaf against its CID before yielding it; inner
  nodes come from ``/block/get`` and are checked too (see :mod:`agents.store.reader`).
- Connection failures, timeouts and HTTP 429/502/503/504 are retried with exponential
  backoff; every request has a connect and a read timeout.
- :meth:`KuboStore.has` asks the node alone (``offline=true``);
  :meth:`KuboStore.require_available` lets it fetch from its peers, within a deadline the
  node itself enforces (Kubo's ``timeout`` option), so content nobody serves ends as
  :class:`UnavailableError` while a node that does not answer at all stays a
  :class:`BackendError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import requests

from agents.store.base import (
    RETRIEVAL_TIMEOUT,
    AddOptions,
    ArtifactStore,
    BackendError,
    CorruptBlockError,
    MissingBlockError,
    Retrieval,
    StoreError,
    UnavailableError,
)
from agents.store.blockstore import MAX_BLOCK_SIZE
from agents.store.cid import CID, RAW, parse_content_cid
from agents.store.importer import Buffer, FileImporter, ImportResult
from agents.store.multipart import MultipartUpload
from agents.store.reader import (
    DagReader,
    decode_file_node,
    file_size,
    looks_like_leaf,
    node_links,
)

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_MISSING_HINTS = ("not found", "could not find", "not in the store", "no such")
# What Kubo answers when a command's ``timeout`` option runs out.
_DEADLINE_HINTS = ("context deadline exceeded",)


class _ResponseStream:
    """A streamed response body as a ``read(size)`` source, with errors as BackendError."""

    def __init__(self, response: requests.Response, what: str) -> None:
        self._response = response
        self._what = what

    def read(self, size: int) -> bytes:
        try:
            data: bytes = self._response.raw.read(size, decode_content=True)
        except Exception as exc:  # urllib3 raises several unrelated types mid-stream
            raise BackendError(f"{self._what}: the stream broke: {exc}") from exc
        if not data:
            trailer = self._response.raw.headers.get("X-Stream-Error")
            if trailer:
                raise BackendError(f"{self._what}: {trailer}")
        return data


class KuboStore(ArtifactStore):
    """An artifact store backed by a Kubo node (or ``veritrain store serve``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        retrieval_timeout: float = RETRIEVAL_TIMEOUT,
    ) -> None:
        if not retrieval_timeout > 0:
            raise StoreError(f"a retrieval timeout must be positive, not {retrieval_timeout!r}")
        self.retrieval_timeout = retrieval_timeout
        base = url.rstrip("/")
        if base.endswith("/api/v0"):
            base = base[: -len("/api/v0")]
        if not base.startswith(("http://", "https://")):
            raise StoreError(f"Kubo RPC URL must start with http:// or https://, not {url!r}")
        self.url = base
        self._api = base + "/api/v0/"
        self._timeout = (connect_timeout, timeout)
        self._retries = retries
        self._backoff = backoff
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"KuboStore({self.url!r})"

    @property
    def location(self) -> str:
        return self.url

    def close(self) -> None:
        self._session.close()

    # -- requests -------------------------------------------------------------------------

    def _post(
        self,
        endpoint: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        body: Callable[[], MultipartUpload] | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """POST to an endpoint, retrying transient failures; a non-200 answer raises."""
        url = self._api + endpoint
        timeout = self._timeout if read_timeout is None else (self._timeout[0], read_timeout)
        attempt = 0
        while True:
            data = body() if body is not None else None
            headers = {"Content-Type": data.content_type} if data is not None else None
            try:
                response = self._session.post(
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    stream=stream,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self._retries:
                    raise BackendError(
                        f"Kubo RPC at {self.url} unreachable for {endpoint} after "
                        f"{attempt + 1} attempts: {exc}"
                    ) from exc
            else:
                if response.status_code == 200:
                    return response
                if response.status_code not in _RETRY_STATUSES or attempt >= self._retries:
                    raise self._error(endpoint, response)
                response.close()
            time.sleep(self._backoff * 2**attempt)
            attempt += 1

    def _error(self, endpoint: str, response: requests.Response) -> StoreError:
        try:
            text = response.text[:2000]
        finally:
            response.close()
        message = text.strip()
        try:
            payload = json.loads(text)
            if isinstance(payload, dict) and "Message" in payload:
                message = str(payload["Message"])
        except ValueError:
            pass
        detail = f"Kubo {endpoint} failed (HTTP {response.status_code}): {message}"
        if any(hint in message.lower() for hint in _DEADLINE_HINTS):
            return UnavailableError(detail)
        if any(hint in message.lower() for hint in _MISSING_HINTS):
            return MissingBlockError(detail)
        if response.status_code in (400, 404, 405, 413):
            return StoreError(detail)
        return BackendError(detail)

    def _json(self, endpoint: str, params: Any = None, read_timeout: float | None = None) -> Any:
        response = self._post(endpoint, params, read_timeout=read_timeout)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"Kubo {endpoint} answered something that is not JSON") from exc

    def version(self) -> dict[str, Any]:
        """The node's ``/version`` answer (``Version``, ``Commit``, ``System``, ...)."""
        answer = self._json("version")
        if not isinstance(answer, dict):
            raise BackendError("Kubo version answered something unexpected")
        return answer

    # -- adding ---------------------------------------------------------------------------

    def _add(
        self,
        open_source: Callable[[], BinaryIO],
        size: int,
        name: str,
        options: AddOptions | None,
        pin: bool,
    ) -> ImportResult:
        opts = options if options is not None else AddOptions()
        params: dict[str, Any] = {
            "cid-version": opts.cid_version,
            "raw-leaves": "true" if opts.uses_raw_leaves else "false",
            "chunker": f"size-{opts.chunk_size}",
            "pin": "true" if pin else "false",
            "hash": "sha2-256",
            "progress": "false",
        }
        if opts.max_links != AddOptions().max_links:
            params["max-file-links"] = opts.max_links
        importers: list[FileImporter] = []

        def body() -> MultipartUpload:
            importer = FileImporter(opts)
            importers.append(importer)
            return MultipartUpload(open_source(), size, name, importer.write)

        response = self._post("add", params, body=body)
        try:
            lines = [line for line in response.text.splitlines() if line.strip()]
        finally:
            response.close()
        hashes = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise BackendError(f"Kubo add answered a line that is not JSON: {line!r}") from exc
            if isinstance(event, dict) and event.get("Hash"):
                hashes.append(str(event["Hash"]))
        local = importers[-1].finish()
        if not hashes:
            raise BackendError("Kubo add answered no CID")
        if hashes[-1] != str(local.cid):
            raise StoreError(
                f"Kubo stored {name} as {hashes[-1]}, but its CID with these options is "
                f"{local.cid}; the node imports differently (check its Import.* settings)"
            )
        return local

    def put_bytes(
        self, data: Buffer, options: AddOptions | None = None, *, pin: bool = True
    ) -> str:
        payload = bytes(data)
        return str(self._add(lambda: io.BytesIO(payload), len(payload), "blob", options, pin).cid)

    def put_file(
        self, path: str | os.PathLike[str], options: AddOptions | None = None, *, pin: bool = True
    ) -> str:
        file_path = Path(path)
        try:
            size = file_path.stat().st_size
        except FileNotFoundError as exc:
            raise StoreError(f"no such file: {file_path}") from exc
        if not file_path.is_file():
            raise StoreError(f"{file_path} is not a regular file; only files can be added")
        handles: list[BinaryIO] = []

        def open_source() -> BinaryIO:
            for handle in handles:
                handle.close()
            handle = open(file_path, "rb")  # noqa: SIM115 (closed after the upload)
            handles.append(handle)
            return handle

        try:
            return str(self._add(open_source, size, file_path.name, options, pin).cid)
        finally:
            for handle in handles:
                handle.close()

    # -- reading --------------------------------------------------------------------------

    def get_block(
        self, cid: str | CID, *, offline: bool = False, deadline: float | None = None
    ) -> bytes:
        """One block from ``/block/get``, checked against its CID.

        ``offline``: only from the node's own blockstore. ``deadline`` (a
        ``time.monotonic()`` instant): the node looks for the block among its peers until
        then; a block not found by then raises :class:`UnavailableError`.
        """
        parsed = cid if isinstance(cid, CID) else parse_content_cid(cid)
        params = {"arg": str(parsed)}
        if offline:
            params["offline"] = "true"
        read_timeout = self._bounded(params, deadline, f"block {parsed}")
        response = self._post("block/get", params, stream=True, read_timeout=read_timeout)
        try:
            data: bytes = response.raw.read(MAX_BLOCK_SIZE + 1, decode_content=True)
        except Exception as exc:
            raise BackendError(f"Kubo block/get {parsed}: the stream broke: {exc}") from exc
        finally:
            response.close()
        if len(data) > MAX_BLOCK_SIZE:
            raise CorruptBlockError(
                f"Kubo sent more than {MAX_BLOCK_SIZE} bytes for block {parsed}"
            )
        if hashlib.sha256(data).digest() != parsed.digest:
            raise CorruptBlockError(f"Kubo sent bytes for block {parsed} that do not match its CID")
        return data

    def open(self, cid: str) -> Iterator[bytes]:
        """Stream the content; the root block is fetched (and checked) before this returns."""
        root = parse_content_cid(cid)
        root_block = self.get_block(root)

        def fetch(wanted: CID) -> bytes:
            return root_block if wanted == root else self.get_block(wanted)

        if root.codec == RAW or not node_links(root, root_block):
            return DagReader(fetch).content(root)
        return self._cat(root, fetch)

    def _cat(self, root: CID, fetch: Callable[[CID], bytes]) -> Iterator[bytes]:
        response = self._post("cat", {"arg": str(root)}, stream=True)
        try:
            yield from DagReader(fetch, _ResponseStream(response, f"Kubo cat {root}")).content(root)
        finally:
            response.close()

    def _bounded(self, params: dict[str, str], deadline: float | None, what: str) -> float | None:
        """Add Kubo's ``timeout`` option for ``deadline``; the read timeout to wait with.

        The node enforces the deadline and answers "context deadline exceeded"; the
        client waits its usual read timeout beyond that, so only a node that does not
        answer at all becomes a :class:`BackendError`.
        """
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise UnavailableError(f"{what} was not retrieved before the deadline")
        params["timeout"] = f"{left:.3f}s"
        return left + self._timeout[1]

    def has(self, cid: str) -> bool:
        """Whether the node holds the whole DAG itself (asked with ``offline=true``).

        Content the node's peers hold is not "had": see :meth:`require_available`.
        """
        try:
            self._walk(parse_content_cid(cid), deadline=None, max_bytes=None)
        except MissingBlockError:
            return False
        return True

    def require_available(self, cid: str, retrieval: Retrieval | None = None) -> None:
        """Have the node retrieve the whole DAG, from itself or its peers, within the bounds.

        Every block is asked for online with the time left as Kubo's ``timeout``; the node
        keeps what it fetched, so reading the content afterwards does not wait on peers.
        """
        bounds = retrieval if retrieval is not None else Retrieval()
        root = parse_content_cid(cid)
        timeout = bounds.timeout if bounds.timeout is not None else self.retrieval_timeout
        deadline = time.monotonic() + timeout
        try:
            self._walk(root, deadline=deadline, max_bytes=bounds.max_bytes)
        except UnavailableError as exc:
            raise UnavailableError(
                f"{root} could not be retrieved from {self.url} or its peers within "
                f"{timeout:g} s: {exc}"
            ) from exc
        except MissingBlockError as exc:
            raise UnavailableError(f"{root} could not be retrieved from {self.url}: {exc}") from exc

    def _walk(self, root: CID, *, deadline: float | None, max_bytes: int | None) -> None:
        """Have the node produce every block of the DAG under ``root``: offline (only its
        own blocks) without a ``deadline``, else from its peers too, until the deadline.

        Inner nodes are fetched and checked; leaves are only asked about with
        ``/block/stat`` (which makes the node fetch them), and a leaf whose size is not the
        one its parent records is missing. A block is asked about once per size a link
        records for it, however often the DAG repeats that link. Content whose root says it
        is larger than ``max_bytes`` is not walked further (its reader refuses it by its
        size); otherwise the walk stops, as corrupt, once the blocks it fetched exceed twice
        that (a DAG whose links hold more than its root says).
        """
        budget = None if max_bytes is None else 2 * max_bytes + MAX_BLOCK_SIZE
        fetched = 0
        seen: set[tuple[CID, int | None]] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            block = self.get_block(node, offline=deadline is None, deadline=deadline)
            fetched += len(block)
            if node == root and max_bytes is not None and file_size(root, block) > max_bytes:
                return
            if node.codec == RAW:
                continue
            pb, fs = decode_file_node(node, block)
            for link, size in zip(pb.links, fs.blocksizes, strict=True):
                if (link.cid, link.tsize) in seen:
                    continue
                seen.add((link.cid, link.tsize))
                if looks_like_leaf(link, size):
                    fetched += self._leaf_size(link.cid, link.tsize, deadline)
                else:
                    stack.append(link.cid)
                if budget is not None and fetched > budget:
                    raise CorruptBlockError(
                        f"{root}'s blocks hold more than {budget} bytes, more than its root's "
                        "file size can need"
                    )

    def _leaf_size(self, cid: CID, size: int | None, deadline: float | None) -> int:
        """A leaf's size from ``/block/stat``, asked offline without a ``deadline``; a size
        other than the one its parent records is a missing leaf."""
        params = {"arg": str(cid)}
        if deadline is None:
            params["offline"] = "true"
        read_timeout = self._bounded(params, deadline, f"block {cid}")
        stat = self._json("block/stat", params, read_timeout=read_timeout)
        got = int(stat.get("Size", -1)) if isinstance(stat, dict) else -1
        if size is not None and got != size:
            raise MissingBlockError(f"block {cid} has {got} bytes, its parent records {size}")
        return got

    # -- pins -----------------------------------------------------------------------------

    def pin(self, cid: str) -> None:
        root = parse_content_cid(cid)
        self._json("pin/add", {"arg": str(root), "recursive": "true"})

    def unpin(self, cid: str) -> None:
        root = parse_content_cid(cid)
        try:
            self._json("pin/rm", {"arg": str(root)})
        except BackendError as exc:
            if "not pinned" in str(exc):
                raise StoreError(f"{root} is not pinned") from exc
            raise

    def pins(self) -> list[str]:
        answer = self._json("pin/ls", {"type": "recursive"})
        keys = answer.get("Keys", {}) if isinstance(answer, dict) else {}
        return sorted(str(k) for k in keys)
