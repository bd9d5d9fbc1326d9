"""The agents: each role is event source → pure decision function → executor."""
