"""veritrain: an open market for ML training compute in which nobody has to be trusted.

Subpackages, by protocol responsibility:

- ``agents.commitment``: tensor roots, state roots and Merkle proofs (PROTOCOL.md §4).
- ``agents.store``: the artifact store (IPFS-exact CIDs; embedded or Kubo).
- ``agents.exact``: reproducible binary32 kernels (PROTOCOL.md §2).
- ``agents.learning``: task specs, models, datasets, training with proofs, replay.
- ``agents.chain``: contract bindings, event source and transaction executor.
- ``agents.roles``: the submitter, solver and verifier agents.
- ``agents.cli``: the ``veritrain`` command line.
"""

__version__ = "0.1.0"
