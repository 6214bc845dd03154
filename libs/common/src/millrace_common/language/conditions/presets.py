"""Ready-made conditions over a record trigger's data, offered by the builder's catalog."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from millrace_common.language.conditions.model import AllOf, AnyOf, Comparison, Condition, Operator


def _data(name: str) -> str:
    return f"trigger.record.data.{name}"


PRESETS: Mapping[str, Condition] = MappingProxyType(
    {
        "invoice_overdue": AllOf(
            all=(
                Comparison(field=_data("status"), operator=Operator.NOT_EQUALS, value="paid"),
                Comparison(field=_data("due_date"), operator=Operator.BEFORE, value="today"),
            )
        ),
        "high_value_invoice": Comparison(
            field=_data("amount"), operator=Operator.GREATER_THAN_OR_EQUALS, value=10000
        ),
        "enterprise_customer": AnyOf(
            any=(
                Comparison(field=_data("tier"), operator=Operator.EQUALS, value="enterprise"),
                Comparison(field=_data("employees"), operator=Operator.GREATER_THAN_OR_EQUALS, value=1000),
            )
        ),
        "urgent_ticket": AnyOf(
            any=(
                Comparison(field=_data("priority"), operator=Operator.IN, value=["urgent", "critical"]),
                Comparison(field=_data("subject"), operator=Operator.MATCHES, value="(?i)urgent"),
            )
        ),
        "project_near_deadline": AllOf(
            all=(
                Comparison(field=_data("status"), operator=Operator.NOT_EQUALS, value="done"),
                Comparison(field=_data("deadline"), operator=Operator.BEFORE, value="+7d"),
            )
        ),
        "payment_failed": Comparison(
            field=_data("payment_status"), operator=Operator.IN, value=["failed", "declined"]
        ),
    }
)
