"""Arbitration's off-chain side: what the one-step adjudicators need from a trace.

- ``agents.arbiter.batch``: bulk evaluation of the binary32 library (operand packing, the
  elementwise ops the evaluator contract takes, the CPU path's answers);
- ``agents.arbiter.elements``: which input values one output element (or one partial result
  of a long reduction) of any trace op reads, mirrored by the one-step contracts;
- ``agents.arbiter.witness``: the calldata of the one step of element ``e`` of op ``j``,
  built from a recorded segment trace and its tensors.

Layer: with the learning and dispute code (it imports ``agents.exact`` and the commitment
module, never the chain, the roles or the command line).
"""
