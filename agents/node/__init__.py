"""What every long-running agent shares: data directory, configuration, keys, logs, metrics."""
