"""Chain access: JSON-RPC, contract ABIs, the event source with its cursor, and the transaction
executor with its journal. Knows no roles (a role's decisions feed it intents)."""
