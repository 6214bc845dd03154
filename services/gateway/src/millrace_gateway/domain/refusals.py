"""What the gateway's use cases refuse, each with the status and the code the API answers (docs/api.md
lists the codes). Pure."""

from __future__ import annotations

from millrace_common.platform.refusals import FieldProblem, Refused


class NotFound(Refused):
    status = 404
    code = "not_found"

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Taken(Refused):
    """An id, name or email that must be unique is in use."""


class Archived(Refused):
    code = "archived"


class WrongState(Refused):
    code = "wrong_state"


class NotEmpty(Refused):
    code = "not_empty"


class InvalidDefinition(Refused):
    status = 422
    code = "invalid_definition"


class InputMismatch(Refused):
    """A manual run's input does not match the workflow's ``input_schema``."""

    status = 422
    code = "input_schema_mismatch"


class UnknownVersion(Refused):
    code = "unknown_version"

    def __init__(self, version: int, *, pointer: str, status: int) -> None:
        super().__init__(f"the workflow has no version {version}", FieldProblem(pointer, "no such version"))
        self.status = status


class SignInRefused(Refused):
    status = 401
    code = "invalid_credentials"


class WebhookMisconfigured(Refused):
    status = 503
    code = "webhook_misconfigured"


class NoWebhook(Refused):
    status = 404
    code = "not_found"


class LiveUnavailable(Refused):
    status = 503
    code = "unavailable"


class AlreadyReplayed(Refused):
    """A dead letter replayed (or being replayed) once already: its bytes are not sent twice."""

    code = "already_replayed"


class NotReplayable(Refused):
    """A dead letter that holds only the beginning of its original message."""

    code = "not_replayable"


class StaleSelection(Refused):
    """A bulk operation whose filter no longer matches the count its token was issued for."""

    code = "stale_selection"

    def __init__(self, detail: str, count: int) -> None:
        super().__init__(detail)
        self.count = count

    def extensions(self) -> dict[str, object]:
        return {"count": self.count}


class InvalidBulkToken(Refused):
    status = 422
    code = "invalid_bulk_token"


class TooManyRuns(Refused):
    status = 422
    code = "too_many_runs"


class InvalidSettings(Refused):
    """Settings that parse but do not fit together (a channel on without what it needs, a login that
    names no basic credential), or a list cursor this API did not give."""

    status = 422
    code = "invalid_request"


class ApprovalsUnavailable(Refused):
    """The approval service, whose API the gateway forwards the inbox's calls to, cannot be reached."""

    status = 503
    code = "unavailable"
