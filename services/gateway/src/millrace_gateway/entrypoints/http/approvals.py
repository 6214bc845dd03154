"""``/api/v1/approvals...`` forwarded to the approval service, so the web app's Approvals inbox works
with the gateway's sign-in on the gateway's origin. The approval service answers (its OpenAPI
describes these operations); the gateway only passes the caller's credentials, query and body on."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from millrace_common.platform.problems import unavailable

from millrace_gateway.adapters.approval_api import ApprovalApi, ApprovalUnreachable

router = APIRouter(include_in_schema=False)

PREFIX = "/api/v1/approvals"


@router.api_route(PREFIX, methods=["GET"])
@router.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST"])
async def forward(request: Request, rest: str = "") -> Response:
    approvals: ApprovalApi | None = request.app.state.approval_api
    if approvals is None:
        raise unavailable("the approval service's address is not configured (MILLRACE_APPROVAL_API_URL)")
    path = f"{PREFIX}/{rest}" if rest else PREFIX
    try:
        answer = await approvals.forward(
            request.method, path, request.url.query, dict(request.headers), await request.body()
        )
    except ApprovalUnreachable as error:
        raise unavailable(f"the approval service is unreachable ({error}); try again shortly") from error
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
