"""``veritrain store``: the artifact store."""

import click


@click.group()
def store() -> None:
    """Add, read, pin and serve artifacts (IPFS-exact CIDs)."""
