"""Sign-in (access tokens), the caller, users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from millrace_common.contracts.messages.envelope import TenantId
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from millrace_gateway.domain.permissions import Role, permissions_of
from millrace_gateway.entrypoints.http.deps import AccountsDep, PrincipalDep, TenantAdmin

router = APIRouter(prefix="/api/v1", tags=["auth"])

Roles = Annotated[list[Role], Field(min_length=1, max_length=5)]
# Deliverability is the mail server's business; reserved domains (.test, .local) are fine here.
EmailStr = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: TenantId
    email: EmailStr
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class MeOut(BaseModel):
    tenant_id: str
    subject: UUID
    kind: str
    roles: list[Role]
    permissions: list[str]


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=10, max_length=1024)
    roles: Roles


class UpdateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: Roles | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class UserOut(BaseModel):
    id: UUID
    email: str
    roles: list[Role]
    disabled: bool
    created_at: datetime


class CreateApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    roles: Roles


class ApiKeyOut(BaseModel):
    id: UUID
    name: str
    prefix: str
    roles: list[Role]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewApiKeyOut(ApiKeyOut):
    key: str = Field(description="Shown once; only its hash is kept")


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses=declared(unauthorized="unknown tenant, email or password"),
)
async def issue_token(body: TokenRequest, accounts: AccountsDep) -> TokenOut:
    """Exchange a user's email and password for an access token."""
    issued = await accounts.sign_in(body.tenant_id, body.email, body.password)
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in)


@router.get("/me", response_model=MeOut)
async def me(principal: PrincipalDep) -> MeOut:
    return MeOut(
        tenant_id=principal.tenant_id,
        subject=principal.subject,
        kind=principal.kind,
        roles=sorted(principal.roles),
        permissions=sorted(p.value for p in permissions_of(principal.roles)),
    )


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    tags=["users"],
    responses=declared(conflict="a user with this email exists"),
)
async def create_user(body: CreateUser, admin: TenantAdmin, accounts: AccountsDep) -> UserOut:
    row = await accounts.create_user(admin.tenant_id, body.email, body.password, set(body.roles))
    return UserOut.model_validate(row, from_attributes=True)


@router.get("/users", response_model=list[UserOut], tags=["users"])
async def list_users(admin: TenantAdmin, accounts: AccountsDep) -> list[UserOut]:
    return [
        UserOut.model_validate(row, from_attributes=True) for row in await accounts.users(admin.tenant_id)
    ]


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(user_id: UUID, body: UpdateUser, admin: TenantAdmin, accounts: AccountsDep) -> UserOut:
    row = await accounts.update_user(
        admin.tenant_id, user_id, roles=body.roles, disabled=body.disabled, password=body.password
    )
    return UserOut.model_validate(row, from_attributes=True)


@router.post("/api-keys", status_code=201, response_model=NewApiKeyOut, tags=["api keys"])
async def create_api_key(body: CreateApiKey, admin: TenantAdmin, accounts: AccountsDep) -> NewApiKeyOut:
    created = await accounts.create_api_key(admin.tenant_id, body.name, body.roles, created_by=admin.subject)
    return NewApiKeyOut(
        id=created.id,
        name=body.name,
        prefix=created.prefix,
        roles=sorted(body.roles),
        created_at=created.created_at,
        last_used_at=None,
        revoked_at=None,
        key=created.key,
    )


@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api keys"])
async def list_api_keys(admin: TenantAdmin, accounts: AccountsDep) -> list[ApiKeyOut]:
    return [
        ApiKeyOut.model_validate(row, from_attributes=True)
        for row in await accounts.api_keys(admin.tenant_id)
    ]


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
async def revoke_api_key(key_id: Annotated[UUID, Path()], admin: TenantAdmin, accounts: AccountsDep) -> None:
    await accounts.revoke_api_key(admin.tenant_id, key_id)
