"""The auditor: rebuild what happened to a task from the chain and the store, re-execute every
claim offline, and say where the chain's ruling holds and where it does not."""
