"""The web app's approval calls, passed on to the approval service (the only one that reads and
decides approvals) with the caller's credentials."""

from __future__ import annotations

from millrace_gateway.adapters.approval_api import Answer, ApprovalApi, ApprovalUnreachable
from millrace_gateway.domain.refusals import ApprovalsUnavailable


class ApprovalForwarding:
    def __init__(self, api: ApprovalApi | None) -> None:
        self._api = api

    async def forward(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        if self._api is None:
            raise ApprovalsUnavailable(
                "the approval service's address is not configured (MILLRACE_APPROVAL_API_URL)"
            )
        try:
            return await self._api.forward(method, path, query, headers, body)
        except ApprovalUnreachable as error:
            raise ApprovalsUnavailable(
                f"the approval service is unreachable ({error}); try again shortly"
            ) from error

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
