"""What Millrace's services share: settings, message contracts, topics, database, Kafka, logging, metrics."""
