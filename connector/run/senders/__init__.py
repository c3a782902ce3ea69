"""The senders of connector/run/execute.py, one per kind of outbox action, over one primitive
(`attempt.Attempts.attempt`) that moves an action through the outbox's states and counts the outcome."""
