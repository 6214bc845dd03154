"""What Millrace's services share, as three packages with one direction of import: ``contracts``
(messages, topics) <- ``language`` (workflow definitions, templates, conditions) <- ``platform``
(settings, service shell, Kafka, outbox, PostgreSQL). The import-linter contracts in
``pyproject.toml`` hold the direction."""
