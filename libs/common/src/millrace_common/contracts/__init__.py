"""The message contracts: every message of every topic, the topic registry, the size contract, node
error types and the outgoing-message type. Imports nothing of Millrace's, and no I/O library."""
