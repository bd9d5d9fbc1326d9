"""Exact kernels: reproducible binary32 arithmetic, committed op by op (PROTOCOL.md §2, §4).

Two honest parties replaying the same training segment with these kernels get
the same bits on any CPU or GPU. The pieces:

- ``kernels``: the interface and semantics of every trace operation;
  ``cpu`` (numpy + numba, with the ``microkernel`` for ``matmul_nt``) and
  ``eager`` (torch tensors, any device) implement it bit for bit alike;
- ``ops``: ``ExactOps``, the checked and optionally traced front end, and the ``Tracer``;
- ``trace``: op codes, op records, step and segment trace roots;
- ``composites``, ``layers``, ``models``, ``optim``, ``distance``: softmax and
  the losses, layers with explicit backward passes, the example architectures,
  SGD and Adam, the distance of PROTOCOL.md §3, all as sequences of trace ops;
- ``backend``: the ``exact`` training backend (registered with ``agents.learning``);
- ``hashing``: the parallel sha256 engines behind ``agents.commitment``;
- ``float32``, ``parallel``, ``errors``: bit patterns, thread use, error types.

docs/exact.md defines every operation and composite step by step.
"""

from agents.exact.errors import ExactEnvironmentError, ExactError

__all__ = ["ExactEnvironmentError", "ExactError"]
