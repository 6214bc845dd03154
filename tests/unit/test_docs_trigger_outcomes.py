"""docs/triggers.md and docs/metrics.md against the code: the table of `trigger_firings` statuses and
the firings counter's row name exactly the trigger service's outcomes (and sources), and the webhook
outcomes the gateway keeps in `webhook_deliveries` are all named where the doc says where webhook
calls' outcomes go."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from millrace_gateway.domain.webhooks import CallOutcome
from millrace_trigger.domain.firings import Outcome, Source

DOCS = Path(__file__).resolve().parents[2] / "docs"
TRIGGERS = DOCS / "triggers.md"


def status_table(text: str) -> list[str]:
    start = text.index("| status | meaning |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(re.match(r"\| `([a-z_]+)` \|", line).group(1))
    return rows


def test_the_firing_status_table_names_every_outcome_of_the_trigger_service_and_no_other():
    assert sorted(status_table(TRIGGERS.read_text())) == sorted(o.value for o in Outcome)


def test_every_webhook_outcome_is_named_where_the_doc_says_where_webhook_outcomes_go():
    text = TRIGGERS.read_text()
    paragraph = text[text.index("Webhook calls never reach the trigger service") :].split("\n\n")[0]
    for outcome in CallOutcome:
        assert f"`{outcome.value}`" in paragraph, outcome


def test_the_firings_counter_row_names_every_source_and_outcome_and_no_other():
    row = next(
        line
        for line in (DOCS / "metrics.md").read_text().splitlines()
        if "millrace_trigger_firings_total" in line
    )
    sources = re.search(r"`source` ((?:`[a-z_]+`(?:, )?)+)", row).group(1)
    outcomes = re.search(r"`outcome` ((?:`[a-z_]+`(?:, )?)+)", row).group(1)
    assert re.findall(r"`([a-z_]+)`", sources) == list(get_args(Source))
    assert re.findall(r"`([a-z_]+)`", outcomes) == [o.value for o in Outcome]
