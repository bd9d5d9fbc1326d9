"""A local devnet: anvil on a loopback port, the contracts deployed, role accounts funded."""
