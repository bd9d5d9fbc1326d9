"""``python -m agents.cli``: the ``veritrain`` command line without the console script."""

from agents.cli import main

main()
