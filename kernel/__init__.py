"""Plumbing every Segin process shares: configuration, logs, telemetry, database, bus, tokens."""
