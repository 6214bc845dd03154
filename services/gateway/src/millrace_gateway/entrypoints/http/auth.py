"""Sign-in (access tokens), the caller, users and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Path
from millrace_common.messages.envelope import TenantId, utc_now
from millrace_common.problems import declared
from millrace_common.tables import api_keys, users
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from millrace_gateway.adapters.security import Principal, new_api_key
from millrace_gateway.domain.permissions import Role, permissions_of
from millrace_gateway.entrypoints.http.deps import (
    EngineDep,
    PasswordsDep,
    PrincipalDep,
    TenantAdmin,
    TokensDep,
)
from millrace_gateway.entrypoints.http.errors import ApiError, not_found
from millrace_gateway.tenancy import add_user

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
async def issue_token(
    body: TokenRequest, engine: EngineDep, passwords: PasswordsDep, tokens: TokensDep
) -> TokenOut:
    """Exchange a user's email and password for an access token."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(users).where(users.c.tenant_id == body.tenant_id, users.c.email == body.email.lower())
            )
        ).first()
    if row is None or row.disabled or not passwords.verify(row.password_hash, body.password):
        raise ApiError(401, "invalid_credentials", "unknown tenant, email or password")
    principal = Principal(row.tenant_id, row.id, "user", frozenset(Role(r) for r in row.roles))
    return TokenOut(access_token=tokens.issue(principal, utc_now()), expires_in=tokens.ttl_seconds)


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
async def create_user(
    body: CreateUser, admin: TenantAdmin, engine: EngineDep, passwords: PasswordsDep
) -> UserOut:
    try:
        async with engine.begin() as connection:
            user_id = await add_user(
                connection, passwords, admin.tenant_id, body.email, body.password, set(body.roles)
            )
    except IntegrityError as error:
        raise ApiError(
            409, "conflict", "a user with this email exists", [{"pointer": "/body/email", "detail": "taken"}]
        ) from error
    return await _user(engine, admin.tenant_id, user_id)


@router.get("/users", response_model=list[UserOut], tags=["users"])
async def list_users(admin: TenantAdmin, engine: EngineDep) -> list[UserOut]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(users).where(users.c.tenant_id == admin.tenant_id).order_by(users.c.created_at)
        )
        return [UserOut.model_validate(row, from_attributes=True) for row in rows]


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(
    user_id: UUID, body: UpdateUser, admin: TenantAdmin, engine: EngineDep, passwords: PasswordsDep
) -> UserOut:
    values: dict[str, object] = {}
    if body.roles is not None:
        values["roles"] = sorted(r.value for r in body.roles)
    if body.disabled is not None:
        values["disabled"] = body.disabled
    if body.password is not None:
        values["password_hash"] = passwords.hash(body.password)
    async with engine.begin() as connection:
        if values:
            result = await connection.execute(
                update(users)
                .where(users.c.id == user_id, users.c.tenant_id == admin.tenant_id)
                .values(**values)
                .returning(users.c.id)
            )
            if result.first() is None:
                raise not_found("user")
    return await _user(engine, admin.tenant_id, user_id)


async def _user(engine: EngineDep, tenant_id: str, user_id: UUID) -> UserOut:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(users).where(users.c.id == user_id, users.c.tenant_id == tenant_id)
            )
        ).first()
    if row is None:
        raise not_found("user")
    return UserOut.model_validate(row, from_attributes=True)


@router.post("/api-keys", status_code=201, response_model=NewApiKeyOut, tags=["api keys"])
async def create_api_key(body: CreateApiKey, admin: TenantAdmin, engine: EngineDep) -> NewApiKeyOut:
    key, prefix, key_hash = new_api_key()
    key_id = uuid4()
    now = utc_now()
    async with engine.begin() as connection:
        await connection.execute(
            insert(api_keys).values(
                id=key_id,
                tenant_id=admin.tenant_id,
                name=body.name,
                prefix=prefix,
                key_hash=key_hash,
                roles=sorted(r.value for r in body.roles),
                created_by=admin.subject,
                created_at=now,
            )
        )
    return NewApiKeyOut(
        id=key_id,
        name=body.name,
        prefix=prefix,
        roles=sorted(body.roles),
        created_at=now,
        last_used_at=None,
        revoked_at=None,
        key=key,
    )


@router.get("/api-keys", response_model=list[ApiKeyOut], tags=["api keys"])
async def list_api_keys(admin: TenantAdmin, engine: EngineDep) -> list[ApiKeyOut]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(api_keys).where(api_keys.c.tenant_id == admin.tenant_id).order_by(api_keys.c.created_at)
        )
        return [ApiKeyOut.model_validate(row, from_attributes=True) for row in rows]


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api keys"])
async def revoke_api_key(key_id: Annotated[UUID, Path()], admin: TenantAdmin, engine: EngineDep) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                api_keys.c.tenant_id == admin.tenant_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=utc_now())
            .returning(api_keys.c.id)
        )
        if result.first() is None:
            raise not_found("API key")
