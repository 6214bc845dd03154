"""``/api/v1/approvals...`` forwarded to the approval service, so the web app's Approvals inbox works
with the gateway's sign-in on the gateway's origin. The approval service answers (its OpenAPI
describes these operations); the gateway only passes the caller's credentials, query and body on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from millrace_common.platform.http_deps import app_state

from millrace_gateway.service_layer.approval_forwarding import ApprovalForwarding

router = APIRouter(include_in_schema=False)

PREFIX = "/api/v1/approvals"

ForwardingDep = Annotated[ApprovalForwarding, Depends(app_state("approval_forwarding"))]


@router.api_route(PREFIX, methods=["GET"])
@router.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST"])
async def forward(request: Request, forwarding: ForwardingDep, rest: str = "") -> Response:
    path = f"{PREFIX}/{rest}" if rest else PREFIX
    answer = await forwarding.forward(
        request.method, path, request.url.query, dict(request.headers), await request.body()
    )
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
