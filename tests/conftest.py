"""Shared test configuration.

Chain tests start their own devnet (anvil on a free loopback port) through
fixtures and stop it afterwards, also on failure; nothing here dials beyond
loopback.
"""
