"""``python -m agents.swarm.worker ADDRESS RANK|DEVICE [--retry SECONDS]``: a swarm's worker.

``ADDRESS`` is where the session listens: ``unix:PATH`` (workers it started itself) or
``HOST:PORT`` (workers on other machines). The worker connects with the swarm's key,
read from the environment variable ``VERITRAIN_SWARM_KEY`` (hex), announces its rank
(an integer) or, when the swarm follows a plan, its device's name, and then serves the
session (``agents.swarm.pipeline.serve``) until told to stop or until the session goes
away. With ``--retry SECONDS`` it then joins the next session at ``ADDRESS`` (a solver
starts one per task), trying every ``SECONDS`` while none listens, until it is stopped.
Exit status: 0 when the session ends, 2 for bad arguments or key, 1 when the session
cannot be reached or refuses the key (never, with ``--retry``: it tries again).
"""

from __future__ import annotations

import os
import sys
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client

USAGE = "usage: python -m agents.swarm.worker unix:PATH|HOST:PORT RANK|DEVICE [--retry SECONDS]"


def main(argv: list[str]) -> int:
    retry = None
    if len(argv) == 4 and argv[2] == "--retry":
        try:
            retry = float(argv[3])
        except ValueError:
            retry = -1.0
        if not 0 < retry <= 3600:
            print("error: --retry takes seconds between 0 and 3600", file=sys.stderr)
            return 2
        argv = argv[:2]
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    address, who = argv
    try:
        key = bytes.fromhex(os.environ.pop("VERITRAIN_SWARM_KEY", "").strip())
    except ValueError:
        print("error: VERITRAIN_SWARM_KEY is not hex", file=sys.stderr)
        return 2
    if not key:
        print("error: VERITRAIN_SWARM_KEY (the swarm's key, hex) is not set", file=sys.stderr)
        return 2
    if not address.startswith("unix:"):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            print(f"error: {address!r} is not HOST:PORT (a port from 1 to 65535)", file=sys.stderr)
            print(USAGE, file=sys.stderr)
            return 2
    announced: int | str = int(who) if who.isdigit() else who
    said = None  # while retrying, the same failure is said once
    while True:
        failure = _session(address, announced, key)
        if failure is not None and failure != said:
            print(f"error: cannot join the swarm at {address}: {failure}", file=sys.stderr)
            if retry is not None:
                print(f"trying again every {retry:g} s", file=sys.stderr, flush=True)
        said = failure
        if retry is None:
            return 0 if failure is None else 1
        time.sleep(retry)


def _session(address: str, announced: int | str, key: bytes) -> str | None:
    """Join the session at ``address`` and serve it to its end; why not, if it could not."""
    from agents.swarm.pipeline import serve

    try:
        if address.startswith("unix:"):
            pipe = Client(address[len("unix:") :], family="AF_UNIX", authkey=key)
        else:
            host, _, port = address.rpartition(":")
            pipe = Client((host, int(port)), authkey=key)
    except (OSError, EOFError, AuthenticationError) as exc:
        return str(exc) or type(exc).__name__
    with pipe:
        pipe.send(announced)
        serve(pipe)
    return None


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to clean up: skip the interpreter's teardown of torch and numba,
    # which takes seconds on a loaded machine while the session waits for the exit.
    os._exit(status)
