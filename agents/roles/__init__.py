"""The agents: each role is event source → pure decision function → executor.

- ``tasks``: a task's view folded from the pool's events;
- ``situation``: what a decision sees (the views, the journal, local work, spec facts)
  and the actions it may return; ``intents``: the one grammar of decision keys;
- ``solver``, ``verifier``, ``submitter``, ``deadlines``, ``payouts``: the pure decisions;
- ``admission``: what a spec must satisfy before an agent stakes on it;
- ``jobs``: local jobs' typed inputs and results; ``work``: running them on the
  learning engine (``hardware``: where); ``report``: a verification as the chain takes it;
  ``replay``: the replayer the verifier's job observes;
- ``runner``, ``worktable``: worker threads, and the jobs' record in the agent's database;
- ``connection``: from configuration to chain, key, store and executor;
  ``forced_errors``: the verifier's forced-error secrets;
- ``agent``: the loop that feeds the decisions and carries out their actions.
"""
