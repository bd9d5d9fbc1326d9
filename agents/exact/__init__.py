"""Exact kernels: reproducible binary32 arithmetic, committed op by op (PROTOCOL.md §2, §4).

Two honest parties replaying the same training segment with these kernels get
the same bits on any CPU or GPU. The pieces:

- ``kernels``: the interface and semantics of every trace operation;
  ``cpu`` (numpy + numba) and ``eager`` (torch tensors, any device) implement it;
- ``ops``: ``ExactOps``, the checked and optionally traced front end layers use;
- ``trace``: op codes, op records, step and segment trace roots;
- ``hashing``: the parallel sha256 engines behind ``agents.commitment``.

docs/exact.md defines every operation and composite step by step.
"""

from agents.exact.errors import ExactEnvironmentError, ExactError

__all__ = ["ExactEnvironmentError", "ExactError"]
