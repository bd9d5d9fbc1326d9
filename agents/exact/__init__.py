"""Exact kernels: reproducible binary32 arithmetic, committed op by op (PROTOCOL.md §2, §4).

Two honest parties replaying the same training segment with these kernels get
the same bits on any CPU or GPU. This package is pure computation: it knows no
training, chain, store, roles or command line (``make lint`` checks the layers),
and its eager path loads no compiler. The pieces:

- ``optable``: the table of trace operations (code, operands, attributes,
  definition, kernels) that every implementation is checked against;
- ``kernels``: the interface and semantics of every trace operation;
  ``cpu`` (numpy + numba, with the ``microkernel`` for ``matmul_nt``) and
  ``eager`` (torch tensors, any device) implement it bit for bit alike, with
  the binary32 ``constants`` they share;
- ``ops``: ``ExactOps``, the checked and optionally traced front end, and the ``Tracer``;
- ``trace``: op codes, op records, step and segment trace roots;
- ``composites``, ``layers``, ``optim``, ``distance``: softmax and the losses,
  layers with explicit backward passes, SGD and Adam, the relative distance of
  PROTOCOL.md §3, all as sequences of trace ops;
- ``float32``, ``errors``: bit patterns and the denormal check, error types.

The training backend over these kernels (and the example models in exact ops)
is ``agents.learning.backends.exact``; the sha256 engines behind commitments are
``agents.commitment.hashing``. docs/exact.md defines every operation and
composite step by step.
"""

from agents.exact.errors import ExactEnvironmentError, ExactError

__all__ = ["ExactEnvironmentError", "ExactError"]
