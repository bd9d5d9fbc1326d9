"""``python -m agents.swarm.worker HOST:PORT RANK``: one worker of a swarm session.

The session that started it listens on ``HOST:PORT`` (loopback) and gave it the
connection key in ``VERITRAIN_SWARM_KEY``; the worker connects, announces its rank
and serves the session (``agents.swarm.training.serve``) until told to stop or
until the session goes away.
"""

from __future__ import annotations

import os
import sys
from multiprocessing.connection import Client


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m agents.swarm.worker HOST:PORT RANK", file=sys.stderr)
        return 2
    host, _, port = argv[0].rpartition(":")
    key = bytes.fromhex(os.environ.pop("VERITRAIN_SWARM_KEY", ""))
    from agents.swarm.training import serve

    with Client((host, int(port)), authkey=key) as pipe:
        pipe.send(int(argv[1]))
        serve(pipe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
