"""The approver's inbox at ``/approvals``: sign in, the pending list, one approval with its data and
history, approve or reject with a note. Server-rendered; the session is an HttpOnly, SameSite=Strict
cookie holding an access token, and every form post carries a CSRF token tied to that session."""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import parse_qs, quote
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.auth import Principal, Tokens
from millrace_common.platform.permissions import Role
from pydantic import JsonValue

from millrace_approval.domain.approvals import ApprovalRefused, Status
from millrace_approval.entrypoints.http.deps import (
    SESSION_COOKIE,
    ApprovalsDep,
    PasswordsDep,
    SettingsDep,
    TokensDep,
    csrf_token,
    csrf_valid,
    session_principal,
)
from millrace_approval.service_layer.approvals import ApprovalNotFound

router = APIRouter(prefix="/approvals", include_in_schema=False)

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.7em 1.5em;display:flex;\
justify-content:space-between;align-items:center}
header a,header button{color:#fff;background:none;border:0;font:inherit;cursor:pointer;\
text-decoration:underline}
main{max-width:60em;margin:1.5em auto;padding:0 1.5em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.45em .7em;border-bottom:1px solid #e3e6eb;vertical-align:top}
.data th{width:12em;color:#555;font-weight:600}
.status{font-weight:600}.flash{padding:.7em 1em;background:#fff4d6;border:1px solid #e8cf7a}
.error{background:#fde2e1;border-color:#e8a09a}
textarea{width:100%;min-height:4em}
button.approve{background:#1f7a3d;color:#fff;border:0;padding:.5em 1.2em}
button.reject{background:#a3261f;color:#fff;border:0;padding:.5em 1.2em}
form.sign-in{background:#fff;padding:1.5em;max-width:22em}
form.sign-in label{display:block;margin:.6em 0 .2em}
form.sign-in input{width:100%;padding:.3em}
"""

SCRIPT = """
document.querySelectorAll('time[datetime]').forEach(function (t) {
  var d = new Date(t.getAttribute('datetime'));
  if (!isNaN(d)) { t.title = t.textContent; t.textContent = d.toLocaleString(); }
});
document.querySelectorAll('form.decide').forEach(function (f) {
  f.addEventListener('submit', function (e) {
    var choice = e.submitter ? e.submitter.value : '';
    if (choice === 'rejected' && !f.note.value.trim() \
&& !confirm('Reject without a note?')) { e.preventDefault(); }
  });
});
"""


def page(title: str, body: str, principal: Principal | None = None, status_code: int = 200) -> HTMLResponse:
    who = ""
    if principal is not None:
        who = (
            '<form method="post" action="/approvals/sign-out">'
            '<button type="submit" id="sign-out">Sign out</button></form>'
        )
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} - Millrace</title>"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{STYLE}</style></head>'
        f'<body><header><a href="/approvals">Approvals</a>{who}</header><main>{body}</main>'
        f"<script>{SCRIPT}</script></body></html>"
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                "form-action 'self'; frame-ancestors 'none'"
            ),
        },
    )


def when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return f'<time datetime="{value.isoformat()}">{escape(value.strftime("%Y-%m-%d %H:%M:%S UTC"))}</time>'


def render_data(value: JsonValue) -> str:
    """JSON as nested tables: keys as row headings, lists as numbered rows."""
    if isinstance(value, dict):
        if not value:
            return "<em>empty</em>"
        rows = "".join(
            f"<tr><th>{escape(str(k))}</th><td>{render_data(v)}</td></tr>" for k, v in value.items()
        )
        return f'<table class="data">{rows}</table>'
    if isinstance(value, list):
        if not value:
            return "<em>none</em>"
        rows = "".join(f"<tr><th>{i + 1}</th><td>{render_data(v)}</td></tr>" for i, v in enumerate(value))
        return f'<table class="data">{rows}</table>'
    if value is None:
        return "<em>null</em>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


async def form_fields(request: Request) -> dict[str, str]:
    body = (await request.body())[:65_536].decode(errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/approvals/sign-in", status_code=303)


def sign_in_form(error: str = "", tenant: str = "", email: str = "") -> str:
    flash = f'<p class="flash error">{escape(error)}</p>' if error else ""
    return (
        f"<h1>Sign in</h1>{flash}"
        '<form class="sign-in" method="post" action="/approvals/sign-in">'
        '<label for="tenant">Tenant</label>'
        f'<input id="tenant" name="tenant" required value="{escape(tenant)}">'
        '<label for="email">Email</label>'
        f'<input id="email" name="email" type="email" required value="{escape(email)}">'
        '<label for="password">Password</label><input id="password" name="password" type="password" required>'
        '<p><button type="submit" id="sign-in">Sign in</button></p></form>'
    )


@router.get("/sign-in")
async def sign_in_page() -> HTMLResponse:
    return page("Sign in", sign_in_form())


@router.post("/sign-in")
async def sign_in(
    request: Request, approvals: ApprovalsDep, passwords: PasswordsDep, settings: SettingsDep
) -> Response:
    fields = await form_fields(request)
    tenant, email, password = fields.get("tenant", ""), fields.get("email", ""), fields.get("password", "")
    user = await approvals.user_for_sign_in(tenant, email) if tenant and email else None
    if user is None or not await passwords.verified(user.password_hash, password):
        return page(
            "Sign in", sign_in_form("Wrong tenant, email or password.", tenant, email), status_code=401
        )
    sessions: Tokens = request.app.state.sessions
    token = sessions.issue(
        Principal(tenant, user.id, "user", frozenset(Role(r) for r in user.roles)), utc_now()
    )
    response = RedirectResponse("/approvals", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        path="/approvals",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return response


@router.post("/sign-out")
async def sign_out() -> Response:
    response = to_sign_in()
    response.delete_cookie(SESSION_COOKIE, path="/approvals")
    return response


@router.get("")
async def inbox(request: Request, approvals: ApprovalsDep, tokens: TokensDep) -> Response:
    principal = session_principal(request, tokens)
    if principal is None:
        return to_sign_in()
    actor = await approvals.actor(principal.tenant_id, str(principal.subject), principal.roles)
    rows = await approvals.pending(principal.tenant_id, actor)
    names = await approvals.workflow_names(principal.tenant_id, {row.workflow_id for row in rows})
    if not rows:
        listing = '<p id="empty">Nothing waits for you.</p>'
    else:
        items = "".join(
            f'<tr class="approval"><td><a href="/approvals/{row.id}">{escape(row.title)}</a></td>'
            f"<td>{escape(names.get(row.workflow_id, str(row.workflow_id)))}</td>"
            f"<td>{when(row.requested_at)}</td><td>{when(row.due_at)}</td></tr>"
            for row in rows
        )
        listing = (
            '<table id="pending"><thead>'
            "<tr><th>Title</th><th>Workflow</th><th>Requested</th><th>Due</th></tr>"
            f"</thead><tbody>{items}</tbody></table>"
        )
    return page("Pending approvals", f"<h1>Waiting for your decision</h1>{listing}", principal)


@router.get("/{approval_id}")
async def approval_page(
    approval_id: UUID, request: Request, approvals: ApprovalsDep, tokens: TokensDep, settings: SettingsDep
) -> Response:
    principal = session_principal(request, tokens)
    if principal is None:
        return to_sign_in()
    try:
        view = await approvals.view(principal.tenant_id, approval_id)
    except ApprovalNotFound:
        return page("Not found", "<h1>Not found</h1><p>No such approval.</p>", principal, status_code=404)
    row = view.row
    names = await approvals.workflow_names(principal.tenant_id, {row.workflow_id})
    flash = request.query_params.get("flash", "")
    flash_html = f'<p class="flash" id="flash">{escape(flash)}</p>' if flash else ""
    assignee = f"user {row.assignee_user}" if row.assignee_user else f"role {row.assignee_role}"
    facts = (
        '<table class="data">'
        f"<tr><th>Workflow</th><td>{escape(names.get(row.workflow_id, str(row.workflow_id)))}</td></tr>"
        f'<tr><th>Status</th><td class="status" id="status">{escape(row.status)}</td></tr>'
        f"<tr><th>Assigned to</th><td>{escape(assignee)}</td></tr>"
        f"<tr><th>Approvals needed</th><td>{row.quorum}</td></tr>"
        f"<tr><th>Requested</th><td>{when(row.requested_at)}</td></tr>"
        f"<tr><th>Due</th><td>{when(row.due_at)}</td></tr></table>"
    )
    decide_form = ""
    if row.status == Status.PENDING.value:
        session = request.cookies[SESSION_COOKIE]
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
        decide_form = (
            f'<h2>Your decision</h2><form class="decide" method="post" action="/approvals/{row.id}/decide">'
            f'<input type="hidden" name="csrf" value="{csrf_token(secret, session)}">'
            f'<input type="hidden" name="snapshot_hash" value="{escape(row.data_hash)}">'
            '<label for="note">Note</label><textarea id="note" name="note" maxlength="5000"></textarea>'
            '<p><button class="approve" type="submit" name="decision" value="approved" id="approve">'
            "Approve</button> "
            '<button class="reject" type="submit" name="decision" value="rejected" id="reject">'
            "Reject</button></p></form>"
        )
    history = "".join(
        f"<tr><td>{when(h.at)}</td><td>{escape(h.actor or 'system')}</td><td>{escape(h.action)}</td>"
        f"<td>{render_data(h.detail)}</td></tr>"
        for h in view.history
    )
    body = (
        f"{flash_html}<h1>{escape(row.title)}</h1>"
        f'<p class="description">{escape(row.description)}</p>{facts}'
        f'<h2>Data to approve</h2><div id="data">{render_data(row.data)}</div>{decide_form}'
        '<h2>History</h2><table id="history">'
        "<thead><tr><th>When</th><th>Who</th><th>What</th><th>Details</th></tr>"
        f"</thead><tbody>{history}</tbody></table>"
    )
    return page(row.title, body, principal)


@router.post("/{approval_id}/decide")
async def decide_from_inbox(
    approval_id: UUID, request: Request, approvals: ApprovalsDep, tokens: TokensDep, settings: SettingsDep
) -> Response:
    principal = session_principal(request, tokens)
    if principal is None:
        return to_sign_in()
    fields = await form_fields(request)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    if not csrf_valid(secret, request.cookies[SESSION_COOKIE], fields.get("csrf", "")):
        return page(
            "Refused", "<h1>Refused</h1><p>The form expired; reload and try again.</p>", principal, 403
        )
    decision = fields.get("decision", "")
    if decision not in ("approved", "rejected"):
        return page("Refused", "<h1>Refused</h1><p>Choose approve or reject.</p>", principal, 422)
    actor = await approvals.actor(principal.tenant_id, str(principal.subject), principal.roles)
    try:
        status = await approvals.decide(
            principal.tenant_id,
            approval_id,
            actor,
            decision,
            fields.get("note", "")[:5000],
            fields.get("snapshot_hash", ""),
        )
        message = f"You {decision} this." + ("" if status is Status.PENDING else f" Outcome: {status.value}.")
    except ApprovalNotFound:
        return page("Not found", "<h1>Not found</h1><p>No such approval.</p>", principal, status_code=404)
    except ApprovalRefused as refused:
        message = f"Not recorded: {refused}"
    return RedirectResponse(f"/approvals/{approval_id}?flash={quote(message)}", status_code=303)
