"""Proof of learning: task specs, models, datasets, training with proofs, replay, profiling.

Modules, in the order a task flows through them:

- ``spec``: the task spec (pydantic, canonical serialization, hash and CID);
- ``prng``, ``initialization``, ``order``: what the seed fixes (initial state, data order);
- ``models``, ``layout``, ``schedule``, ``opcount``: architecture, checkpoint state layout,
  learning rates, the static op count that prices a task;
- ``stages``, ``compression``: a model cut into pipeline stages, and what crosses a cut
  (activation compression, docs/swarm.md);
- ``strictjson``, ``datasets``, ``task``, ``tensorfile``: strict JSON for what another
  party wrote, dataset artifacts, a spec bound to its data, safetensors;
- ``backends``: training backends (``native`` torch, ``exact`` over ``agents.exact``);
- ``solver``, ``proof``: training with checkpoints, the proof manifest and its artifacts;
- ``selection``, ``distance``, ``verdict``, ``verifier``: segment sampling, the distance
  of PROTOCOL.md §3, the rule that decides a segment, replaying segments and the verdict;
- ``faults``: the fault record a verifier commits to when a check rejects a proof;
- ``drift``, ``profiler``: the model of honest drift, and measuring it within a budget
  to propose tolerant mode's τ;
- ``cheats``, ``malformed``: dishonest solvers and malformed proofs, for tests and
  devnet demonstrations.

Runs offline: nothing here reaches a chain (``make lint`` checks the layers).
"""
