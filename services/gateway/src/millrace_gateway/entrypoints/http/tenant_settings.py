"""Tenant AI settings and named credentials. Secrets are encrypted at rest and never returned."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import uuid4

from fastapi import APIRouter, Path
from millrace_common.messages.envelope import utc_now
from millrace_common.problems import declared
from millrace_common.tables import credentials, tenant_ai_settings
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from millrace_gateway.entrypoints.http.deps import EngineDep, SecretBoxDep, TenantAdmin
from millrace_gateway.entrypoints.http.errors import ApiError, not_found

router = APIRouter(prefix="/api/v1", tags=["tenant settings"])

CredentialName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
HeaderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$")]


class AiSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        min_length=8, max_length=2000, pattern=r"^https?://", description="An OpenAI-compatible API root"
    )
    model: str = Field(min_length=1, max_length=200)
    api_key: str | None = Field(
        default=None, min_length=1, max_length=4000, description="Omit to keep the stored key"
    )
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=1, le=200_000)
    monthly_token_budget: int | None = Field(default=None, ge=1)
    allow_private_endpoint: bool = Field(default=False, description="Allow loopback and private addresses")


class AiSettingsOut(BaseModel):
    base_url: str
    model: str
    has_api_key: bool
    temperature: float
    max_tokens: int
    monthly_token_budget: int | None
    allow_private_endpoint: bool
    updated_at: datetime


class BearerSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["bearer"]
    token: str = Field(min_length=1, max_length=8000)


class BasicSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["basic"]
    username: str = Field(min_length=1, max_length=500)
    password: str = Field(max_length=2000)


class HeaderSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["header"]
    header_name: HeaderName
    value: str = Field(min_length=1, max_length=8000)


class HmacSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["hmac"]
    secret: str = Field(min_length=16, max_length=1000, description="Shared secret for signing webhooks")


Secret = Annotated[BearerSecret | BasicSecret | HeaderSecret | HmacSecret, Field(discriminator="kind")]
SECRET = TypeAdapter(Secret)


class CredentialBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    secret: Secret


class CredentialUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: Secret


class CredentialOut(BaseModel):
    name: str
    kind: str
    created_at: datetime
    updated_at: datetime


@router.get("/settings/ai", response_model=AiSettingsOut, responses=declared(not_found="no AI settings yet"))
async def get_ai_settings(admin: TenantAdmin, engine: EngineDep) -> AiSettingsOut:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(tenant_ai_settings).where(tenant_ai_settings.c.tenant_id == admin.tenant_id)
            )
        ).first()
    if row is None:
        raise not_found("AI settings")
    return AiSettingsOut(
        base_url=row.base_url,
        model=row.model,
        has_api_key=row.api_key_ciphertext is not None,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        monthly_token_budget=row.monthly_token_budget,
        allow_private_endpoint=row.allow_private_endpoint,
        updated_at=row.updated_at,
    )


@router.put("/settings/ai", response_model=AiSettingsOut)
async def put_ai_settings(
    body: AiSettingsBody, admin: TenantAdmin, engine: EngineDep, box: SecretBoxDep
) -> AiSettingsOut:
    values = body.model_dump(exclude={"api_key"}) | {"updated_at": utc_now()}
    if body.api_key is not None:
        values["api_key_ciphertext"] = box.seal(body.api_key)
    async with engine.begin() as connection:
        await connection.execute(
            pg_insert(tenant_ai_settings)
            .values(tenant_id=admin.tenant_id, **values)
            .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
        )
    return await get_ai_settings(admin, engine)


@router.post(
    "/credentials",
    status_code=201,
    response_model=CredentialOut,
    responses=declared(conflict="a credential with this name exists"),
)
async def create_credential(
    body: CredentialBody, admin: TenantAdmin, engine: EngineDep, box: SecretBoxDep
) -> CredentialOut:
    now = utc_now()
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(credentials).values(
                    id=uuid4(),
                    tenant_id=admin.tenant_id,
                    name=body.name,
                    kind=body.secret.kind,
                    ciphertext=box.seal(body.secret.model_dump_json()),
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError as error:
        raise ApiError(
            409,
            "conflict",
            f"a credential named {body.name!r} exists",
            [{"pointer": "/body/name", "detail": "taken"}],
        ) from error
    return CredentialOut(name=body.name, kind=body.secret.kind, created_at=now, updated_at=now)


@router.get("/credentials", response_model=list[CredentialOut])
async def list_credentials(admin: TenantAdmin, engine: EngineDep) -> list[CredentialOut]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(credentials).where(credentials.c.tenant_id == admin.tenant_id).order_by(credentials.c.name)
        )
        return [CredentialOut.model_validate(row, from_attributes=True) for row in rows]


@router.get("/credentials/{name}", response_model=CredentialOut)
async def get_credential(name: CredentialName, admin: TenantAdmin, engine: EngineDep) -> CredentialOut:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(credentials).where(
                    credentials.c.tenant_id == admin.tenant_id, credentials.c.name == name
                )
            )
        ).first()
    if row is None:
        raise not_found("credential")
    return CredentialOut.model_validate(row, from_attributes=True)


@router.put("/credentials/{name}", response_model=CredentialOut)
async def replace_credential(
    name: CredentialName, body: CredentialUpdate, admin: TenantAdmin, engine: EngineDep, box: SecretBoxDep
) -> CredentialOut:
    async with engine.begin() as connection:
        result = await connection.execute(
            update(credentials)
            .where(credentials.c.tenant_id == admin.tenant_id, credentials.c.name == name)
            .values(
                kind=body.secret.kind,
                ciphertext=box.seal(body.secret.model_dump_json()),
                updated_at=utc_now(),
            )
            .returning(credentials.c.id)
        )
        if result.first() is None:
            raise not_found("credential")
    return await get_credential(name, admin, engine)


@router.delete("/credentials/{name}", status_code=204)
async def delete_credential(name: CredentialName, admin: TenantAdmin, engine: EngineDep) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(
            delete(credentials)
            .where(credentials.c.tenant_id == admin.tenant_id, credentials.c.name == name)
            .returning(credentials.c.id)
        )
        if result.first() is None:
            raise not_found("credential")
