"""The approval domain's refusals as problem details; every other error is already one
(``millrace_common.problems``, installed by ``create_app``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from millrace_common.problems import problem_response

from millrace_approval.domain.approvals import ApprovalRefused
from millrace_approval.service_layer.approvals import ApprovalNotFound


def install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApprovalRefused)
    async def refused(request: Request, error: ApprovalRefused) -> JSONResponse:
        return problem_response(request, error.status, error.code, str(error))

    @app.exception_handler(ApprovalNotFound)
    async def not_found(request: Request, _: ApprovalNotFound) -> JSONResponse:
        return problem_response(request, 404, "not_found", "approval not found")
