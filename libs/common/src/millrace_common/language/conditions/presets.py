"""Ready-made conditions over a record trigger's data, each with a name and a description, offered by
the builder's catalog (``GET /condition-presets``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from millrace_common.language.conditions.model import AllOf, AnyOf, Comparison, Condition, Operator


class Preset(BaseModel):
    """A ready-made condition: what the builder lists (``name``, ``description``) and what it inserts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    condition: Condition


def _data(name: str) -> str:
    return f"trigger.record.data.{name}"


PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "invoice_overdue": Preset(
            name="Invoice is overdue",
            description="Not paid, and its due date is before today",
            condition=AllOf(
                all=(
                    Comparison(field=_data("status"), operator=Operator.NOT_EQUALS, value="paid"),
                    Comparison(field=_data("due_date"), operator=Operator.BEFORE, value="today"),
                )
            ),
        ),
        "high_value_invoice": Preset(
            name="High-value invoice",
            description="The amount is 10,000 or more",
            condition=Comparison(
                field=_data("amount"), operator=Operator.GREATER_THAN_OR_EQUALS, value=10000
            ),
        ),
        "enterprise_customer": Preset(
            name="Enterprise customer",
            description="Tier is enterprise, or 1,000 employees or more",
            condition=AnyOf(
                any=(
                    Comparison(field=_data("tier"), operator=Operator.EQUALS, value="enterprise"),
                    Comparison(
                        field=_data("employees"), operator=Operator.GREATER_THAN_OR_EQUALS, value=1000
                    ),
                )
            ),
        ),
        "urgent_ticket": Preset(
            name="Urgent ticket",
            description="Priority urgent or critical, or 'urgent' in the subject in any case",
            condition=AnyOf(
                any=(
                    Comparison(field=_data("priority"), operator=Operator.IN, value=["urgent", "critical"]),
                    Comparison(
                        field=_data("subject"), operator=Operator.CONTAINS, value="urgent", ignore_case=True
                    ),
                )
            ),
        ),
        "project_near_deadline": Preset(
            name="Project near its deadline",
            description="Not done, and the deadline is within 7 days (or passed)",
            condition=AllOf(
                all=(
                    Comparison(field=_data("status"), operator=Operator.NOT_EQUALS, value="done"),
                    Comparison(field=_data("deadline"), operator=Operator.BEFORE, value="+7d"),
                )
            ),
        ),
        "payment_failed": Preset(
            name="Payment failed",
            description="The payment status is failed or declined",
            condition=Comparison(
                field=_data("payment_status"), operator=Operator.IN, value=["failed", "declined"]
            ),
        ),
    }
)
