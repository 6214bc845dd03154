"""The platform every service runs on: settings, the service shell, Kafka (producing, consuming,
dead letters), the outbox, PostgreSQL (tables, connections, bulk writes, migrations), problem
details, metrics and logging. Imports the contracts and the workflow language, never the reverse."""
