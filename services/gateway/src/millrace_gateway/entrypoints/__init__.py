"""What drives the gateway's use cases: HTTP only (``http``). Its one Kafka consumer, the live feed of
``runs.events``, feeds the live streams rather than driving a use case, so it is an adapter
(``adapters.run_event_feed``); its loops driven by a clock are the platform's (the outbox relay's sweep,
the gauge collection), started by ``bootstrap``."""
