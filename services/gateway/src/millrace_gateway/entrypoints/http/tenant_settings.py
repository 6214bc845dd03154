"""Tenant AI settings, named credentials and the retention of finished runs. Secrets are encrypted at
rest and never returned."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from sqlalchemy import Row

from millrace_gateway.domain.ai_usage import ModelPrice
from millrace_gateway.entrypoints.http.deps import Reader, TenantAdmin, TenantSettingsDep
from millrace_gateway.service_layer.tenant_settings import AiSettings, Credential, Retention

router = APIRouter(prefix="/api/v1", tags=["tenant settings"])

CredentialName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
HeaderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
PerMillion = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
MAX_PRICED_MODELS = 200


class PerModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_per_million: PerMillion = Field(description="The price of a million prompt (input) tokens")
    completion_per_million: PerMillion = Field(
        description="The price of a million completion (output) tokens"
    )


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
    model_prices: dict[ModelName, PerModelPrice] | None = Field(
        default=None,
        max_length=MAX_PRICED_MODELS,
        description="What the tenant pays per model, by the model's name as the endpoint reports it; the "
        "usage report's cost comes from these. Omit to keep the stored prices, {} to clear them",
    )
    price_currency: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="The ISO 4217 code the prices are in (a label: nothing is converted); omit to keep it",
    )


class AiSettingsOut(BaseModel):
    base_url: str
    model: str
    has_api_key: bool
    temperature: float
    max_tokens: int
    monthly_token_budget: int | None
    allow_private_endpoint: bool
    model_prices: dict[str, PerModelPrice]
    price_currency: str
    updated_at: datetime


class RetentionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days a finished run is kept; null for the installation's default (30 days unless "
        "the operator changed it). Runs are never pruned sooner than messages about them can arrive "
        "(8 days by default)",
    )
    export_before_prune: bool = Field(
        default=False,
        description="Write every run to the operator's export folder (JSON Lines) before it is pruned",
    )


class RetentionOut(BaseModel):
    run_retention_days: int | None
    export_before_prune: bool
    updated_at: datetime | None


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
async def get_ai_settings(admin: TenantAdmin, settings: TenantSettingsDep) -> AiSettingsOut:
    return _ai_settings(await settings.ai_settings(admin.tenant_id))


class AiUsageOut(BaseModel):
    month: date = Field(description="The first day of the month (UTC) the usage is counted for")
    tokens: int = Field(description="Tokens counted against the monthly budget so far")
    calls: int = Field(description="AI calls made this month")
    monthly_token_budget: int | None


@router.get("/settings/ai/usage", response_model=AiUsageOut)
async def get_ai_usage(admin: TenantAdmin, settings: TenantSettingsDep) -> AiUsageOut:
    """This calendar month's AI usage (UTC), as the monthly budget counts it."""
    usage, budget = await settings.ai_usage(admin.tenant_id)
    return AiUsageOut(month=usage.month, tokens=usage.tokens, calls=usage.calls, monthly_token_budget=budget)


class NetworkPolicyOut(BaseModel):
    allowed_networks: list[str] = Field(
        description="Private or loopback CIDR ranges the tenant's HTTP, webhook and AI nodes may call "
        "beyond public addresses; empty: public addresses only"
    )
    allow_private_targets: bool = Field(description="Every private and loopback address is allowed")
    updated_at: datetime | None = Field(description="When the operator last set it; null: never")
    managed_by: Literal["operator"] = Field(
        default="operator",
        description="Only the installation's operator changes it (millrace-admin allow-networks): a "
        "tenant that could open its own way into private networks would make the SSRF guard moot",
    )


@router.get("/settings/network", response_model=NetworkPolicyOut)
async def get_network_policy(reader: Reader, settings: TenantSettingsDep) -> NetworkPolicyOut:
    """Which private or loopback networks the tenant's nodes may reach (read-only)."""
    row = await settings.network_policy(reader.tenant_id)
    if row is None:
        return NetworkPolicyOut(allowed_networks=[], allow_private_targets=False, updated_at=None)
    return NetworkPolicyOut(
        allowed_networks=list(row.allowed_networks),
        allow_private_targets=row.allow_private_targets,
        updated_at=row.updated_at,
    )


@router.put("/settings/ai", response_model=AiSettingsOut)
async def put_ai_settings(
    body: AiSettingsBody, admin: TenantAdmin, settings: TenantSettingsDep
) -> AiSettingsOut:
    wanted = AiSettings(
        base_url=body.base_url,
        model=body.model,
        api_key=body.api_key,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        monthly_token_budget=body.monthly_token_budget,
        allow_private_endpoint=body.allow_private_endpoint,
        model_prices=None
        if body.model_prices is None
        else {
            model: ModelPrice(price.prompt_per_million, price.completion_per_million)
            for model, price in body.model_prices.items()
        },
        price_currency=body.price_currency,
    )
    return _ai_settings(await settings.put_ai_settings(admin.tenant_id, wanted))


@router.get("/settings/retention", response_model=RetentionOut)
async def get_retention(admin: TenantAdmin, settings: TenantSettingsDep) -> RetentionOut:
    """How long the tenant's finished runs are kept, and whether they are exported before they go."""
    return RetentionOut.model_validate(await settings.retention(admin.tenant_id), from_attributes=True)


@router.put("/settings/retention", response_model=RetentionOut)
async def put_retention(body: RetentionBody, admin: TenantAdmin, settings: TenantSettingsDep) -> RetentionOut:
    wanted = Retention(body.run_retention_days, body.export_before_prune)
    stored = await settings.put_retention(admin.tenant_id, wanted)
    return RetentionOut.model_validate(stored, from_attributes=True)


@router.post(
    "/credentials",
    status_code=201,
    response_model=CredentialOut,
    responses=declared(conflict="a credential with this name exists"),
)
async def create_credential(
    body: CredentialBody, admin: TenantAdmin, settings: TenantSettingsDep
) -> CredentialOut:
    created = await settings.create_credential(
        admin.tenant_id, body.name, body.secret.kind, body.secret.model_dump_json()
    )
    return _credential(created)


@router.get("/credentials", response_model=list[CredentialOut])
async def list_credentials(admin: TenantAdmin, settings: TenantSettingsDep) -> list[CredentialOut]:
    return [_credential(row) for row in await settings.credentials(admin.tenant_id)]


@router.get("/credentials/{name}", response_model=CredentialOut)
async def get_credential(
    name: CredentialName, admin: TenantAdmin, settings: TenantSettingsDep
) -> CredentialOut:
    return _credential(await settings.credential(admin.tenant_id, name))


@router.put("/credentials/{name}", response_model=CredentialOut)
async def replace_credential(
    name: CredentialName, body: CredentialUpdate, admin: TenantAdmin, settings: TenantSettingsDep
) -> CredentialOut:
    replaced = await settings.replace_credential(
        admin.tenant_id, name, body.secret.kind, body.secret.model_dump_json()
    )
    return _credential(replaced)


@router.delete("/credentials/{name}", status_code=204)
async def delete_credential(name: CredentialName, admin: TenantAdmin, settings: TenantSettingsDep) -> None:
    await settings.delete_credential(admin.tenant_id, name)


def _ai_settings(row: Row) -> AiSettingsOut:
    return AiSettingsOut(
        base_url=row.base_url,
        model=row.model,
        has_api_key=row.api_key_ciphertext is not None,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        monthly_token_budget=row.monthly_token_budget,
        allow_private_endpoint=row.allow_private_endpoint,
        model_prices={
            model: PerModelPrice.model_validate(price) for model, price in row.model_prices.items()
        },
        price_currency=row.price_currency,
        updated_at=row.updated_at,
    )


def _credential(credential: Credential | Row) -> CredentialOut:
    return CredentialOut.model_validate(credential, from_attributes=True)
