"""The pinpoint game, off chain (PROTOCOL.md §5, docs/dispute.md).

- ``program``: the task's program, what a replay must follow op by op, and its root;
- ``tree``: Merkle trees level by level, for descents and proofs;
- ``errors``: the package's errors.
"""
