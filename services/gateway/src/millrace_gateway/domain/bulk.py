"""Bulk retry and cancel: which runs a request selects, and the signed token that binds an operation
to the selection and the count the caller confirmed. Pure (the clock is passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import jwt
from millrace_common.platform.refusals import FieldProblem

from millrace_gateway.domain.refusals import InvalidBulkToken, TooManyRuns

BulkAction = Literal["retry", "cancel"]
Outcome = Literal["retried", "cancelled", "skipped"]

DONE: dict[BulkAction, Outcome] = {"retry": "retried", "cancel": "cancelled"}
"""What a run the action applied to is reported as."""

_AUDIENCE = "millrace-bulk-runs"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class RunSelection:
    """Either a filter (each part optional, all of them must hold) or a list of run ids; only the
    caller's tenant's runs are ever selected."""

    workflow_id: UUID | None = None
    status: str | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None
    trigger_kind: str | None = None
    text: str | None = None
    """Found in the trigger's data, as ``GET /runs?q=`` finds it."""
    run_ids: tuple[UUID, ...] | None = None

    def claim(self) -> dict[str, object]:
        return {
            "workflow_id": str(self.workflow_id) if self.workflow_id else None,
            "status": self.status,
            "started_after": self.started_after.isoformat() if self.started_after else None,
            "started_before": self.started_before.isoformat() if self.started_before else None,
            "trigger_kind": self.trigger_kind,
            "text": self.text,
            "run_ids": [str(run_id) for run_id in self.run_ids] if self.run_ids is not None else None,
        }

    @classmethod
    def from_claim(cls, claim: dict[str, object]) -> RunSelection:
        def instant(value: object) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        run_ids = claim.get("run_ids")
        workflow_id = claim.get("workflow_id")
        status = claim.get("status")
        trigger_kind = claim.get("trigger_kind")
        text = claim.get("text")
        return cls(
            workflow_id=UUID(workflow_id) if isinstance(workflow_id, str) else None,
            status=status if isinstance(status, str) else None,
            started_after=instant(claim.get("started_after")),
            started_before=instant(claim.get("started_before")),
            trigger_kind=trigger_kind if isinstance(trigger_kind, str) else None,
            text=text if isinstance(text, str) else None,
            run_ids=tuple(UUID(str(r)) for r in run_ids) if isinstance(run_ids, list) else None,
        )


@dataclass(frozen=True)
class Confirmation:
    """What a bulk token binds: who, which action, which runs, how many matched."""

    tenant_id: str
    action: BulkAction
    selection: RunSelection
    count: int


def refuse_over_limit(count: int, limit: int) -> None:
    if count > limit:
        raise TooManyRuns(
            f"{count} runs match; one bulk operation acts on at most {limit} (MILLRACE_BULK_RUNS_MAX): "
            "narrow the filter",
            FieldProblem("/body/filter", f"{count} runs match, more than {limit}"),
        )


class BulkTokens:
    """HS256 tokens under the gateway's signing key, with an audience of their own so neither an
    access token nor a bulk token can stand for the other."""

    def __init__(self, secret: str, *, ttl: timedelta) -> None:
        self._secret = secret
        self._ttl = ttl

    def issue(self, confirmation: Confirmation, now: datetime) -> tuple[str, datetime]:
        expires_at = now + self._ttl
        claims = {
            "aud": _AUDIENCE,
            "tenant": confirmation.tenant_id,
            "action": confirmation.action,
            "selection": confirmation.selection.claim(),
            "count": confirmation.count,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM), expires_at.replace(microsecond=0)

    def verify(self, token: str, *, tenant_id: str, action: BulkAction, now: datetime) -> Confirmation:
        """The confirmation the token carries, or :class:`InvalidBulkToken` when it is forged, expired,
        or was issued to another tenant or for another action."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"verify_exp": False, "require": ["exp", "tenant", "action", "count"]},
            )
        except jwt.PyJWTError as error:
            raise _invalid("the token is not one this API issued") from error
        if claims["exp"] <= now.timestamp():
            raise _invalid("the token has expired: ask for the count again")
        if claims["tenant"] != tenant_id:
            raise _invalid("the token is not one this API issued")
        if claims["action"] != action:
            raise _invalid(f"the token was issued for {claims['action']!r}, not {action!r}")
        return Confirmation(
            tenant_id, action, RunSelection.from_claim(claims["selection"]), int(claims["count"])
        )


def _invalid(reason: str) -> InvalidBulkToken:
    return InvalidBulkToken(reason, FieldProblem("/body/token", reason))
