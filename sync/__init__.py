"""Replication: hybrid logical clock, the change vocabulary, CRDT merge rules."""
