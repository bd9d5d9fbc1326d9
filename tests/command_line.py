"""The ``veritrain`` command line, run in the test's own process."""

from __future__ import annotations

import pytest

from agents.cli import main


def veritrain(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``veritrain ARGS`` as the console script does: its exit status, stdout and stderr."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
