"""Constants of the trigger index the gateway keeps when a workflow version is activated."""

ANY_PIPELINE = "*"
RECORD_TRIGGER_KINDS = frozenset({"record_created", "record_updated", "record_deleted"})
