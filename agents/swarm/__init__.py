"""Swarm solvers: one task trained across many devices joined by slow, uneven links.

The scheduler (``network``, ``workload``, ``cost``, ``arrangement`` and the
searches ``genetic``, ``sampling``, ``refinement``) is pure computation: given
devices with measured latency and bandwidth between them and a model's shapes, it
assigns devices to data-parallel groups and pipeline stages and orders the stages,
minimizing the per-iteration communication cost model of Yuan et al. (DT-FM,
NeurIPS 2022). See docs/swarm.md.
"""
