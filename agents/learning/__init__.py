"""Proof of learning: task specs, models, datasets, training with proofs, replay, profiling.

Modules, in the order a task flows through them:

- ``spec``: the task spec (pydantic, canonical serialization, hash and CID);
- ``prng``, ``initialization``, ``order``: what the seed fixes (initial state, data order);
- ``models``, ``layout``, ``schedule``: architecture, checkpoint state layout, learning rates;
- ``datasets``, ``task``, ``tensorfile``: dataset artifacts, a spec bound to its data, safetensors;
- ``backend``, ``native``: training backends (the exact kernels register ``exact``).
"""
