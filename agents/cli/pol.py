"""``veritrain pol``: proof of learning, offline."""

import click


@click.group()
def pol() -> None:
    """Train with a proof, verify a proof, profile a task."""
