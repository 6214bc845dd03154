"""docs/message-contracts.md names every message type the code can put on each topic, under that
topic's section, and no type the code does not know.

The topics come from the registry (``millrace_common.contracts.topics.ALL_TOPICS``), each topic's types
from the discriminated union its consumers decode it with (``millrace_common.contracts.messages``). Which
union a topic carries is the one thing written here (``CARRIES``), and it is checked both ways: every
registered topic has a union, every union of the messages package is carried by a topic. So a new message
type, a new topic or a new union fails here until the document describes it."""

from __future__ import annotations

import importlib
import pkgutil
import re
import typing
from pathlib import Path

import millrace_common.contracts.messages
import pytest
from millrace_common.contracts.messages import node_commands, records, run_commands, run_events
from millrace_common.contracts.messages.envelope import DeadLetter
from millrace_common.contracts.topics import (
    ALL_TOPICS,
    NODES_RESULTS,
    NODES_TEST_RESULTS,
    RECORDS_EVENTS,
    RECORDS_INGRESS,
    RUNS_APPROVALS,
    RUNS_COMMANDS,
    RUNS_EVENTS,
    Topic,
)
from millrace_common.language.workflow_nodes import RUNNER_TOPICS

pytestmark = pytest.mark.unit

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "message-contracts.md"
DOC = DOC_PATH.read_text()

# The union each topic's consumers decode it with; the runner topics are those RUNNER_TOPICS sends to.
CARRIES: dict[Topic, object] = {
    RECORDS_EVENTS: records.AnyRecordEvent,
    RECORDS_INGRESS: records.AnyRecordEvent,
    RUNS_COMMANDS: run_commands.AnyRunCommand,
    RUNS_EVENTS: run_events.AnyRunEvent,
    RUNS_APPROVALS: run_events.AnyApprovalsEvent,
    NODES_RESULTS: node_commands.AnyNodeResult,
    NODES_TEST_RESULTS: node_commands.AnyNodeResult,
    **{topic: node_commands.AnyNodeCommand for topic in RUNNER_TOPICS.values()},
}

TYPE_CELL = re.compile(r"^`(?P<type>[a-z_]+\.[a-z_]+)` \((?P<model>[A-Za-z]+)\)$")
TYPE_LIKE = re.compile(r"`([a-z_]+)\.([a-z_]+)`")


def members(union: object) -> dict[str, type]:
    """``{type: model}`` of an ``Annotated[A | B | ..., Field(discriminator="type")]`` (or of one model)."""
    inner = typing.get_args(union)[0]
    models = typing.get_args(inner) or (inner,)
    return {model.model_fields["type"].default: model for model in models}


def unions_in_the_messages_package() -> dict[str, object]:
    found: dict[str, object] = {}
    for info in pkgutil.iter_modules(millrace_common.contracts.messages.__path__):
        module = importlib.import_module(f"millrace_common.contracts.messages.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("Any") and typing.get_origin(value) is typing.Annotated:
                found[f"{info.name}.{name}"] = value
    return found


def sections() -> dict[str, str]:
    """The text under each ``## `name` ...`` heading, by the heading's first backquoted name."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^## ", DOC, flags=re.MULTILINE)[1:]:
        heading = chunk.partition("\n")[0]
        name = re.search(r"`([^`]+)`", heading)
        if name:
            found[name.group(1)] = chunk
    return found


def heading_pattern(name: str) -> re.Pattern[str]:
    """``nodes.ready.<class>`` matches ``nodes.ready.ai``, the placeholder standing for one segment."""
    parts = re.split(r"(<[a-z_]+>)", name)
    return re.compile("".join("([a-z_]+)" if p.startswith("<") else re.escape(p) for p in parts) + "$")


def section_of(topic: Topic) -> tuple[str, str, str | None]:
    """(heading name, section text, what the placeholder stood for) of the one section for ``topic``."""
    matches = [
        (name, text, match)
        for name, text in sections().items()
        if not name.endswith(".dlq") and (match := heading_pattern(name).match(topic.name))
    ]
    assert len(matches) == 1, f"{topic.name}: {len(matches)} sections of {DOC_PATH.name} are about it"
    name, text, match = matches[0]
    return name, text, match.group(1) if match.groups() else None


def documented_types(section: str) -> dict[str, str]:
    """``{type: model name}`` from the first cells of the section's tables headed ``| type |``."""
    found: dict[str, str] = {}
    in_table = False
    for line in section.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        first = line.split("|")[1].strip()
        if first == "type":
            in_table = True
        elif in_table and not set(first) <= set("-: "):
            cell = TYPE_CELL.match(first)
            assert cell, f"a type row's first cell should read '`<type>` (<Model>)': {line!r}"
            assert cell["type"] not in found, f"{cell['type']} is listed twice in one section"
            found[cell["type"]] = cell["model"]
    return found


# The granted outside topics (Kafka triggers) carry whatever JSON their producers write: no union.
CONTRACT_TOPICS = tuple(topic for topic in ALL_TOPICS if not topic.granted)


def test_every_topic_and_every_union_is_accounted_for():
    assert set(CARRIES) == set(CONTRACT_TOPICS), (
        "a topic of the registry carries no union here, or one is gone"
    )
    carried = {id(union) for union in CARRIES.values()}
    for name, union in unions_in_the_messages_package().items():
        assert id(union) in carried, f"{name} is carried by no topic in CARRIES"


def test_the_granted_topics_section_gives_the_key_and_lists_no_types():
    for topic in ALL_TOPICS:
        if topic.granted:
            name, section, _ = section_of(topic)
            assert f"(key: `{topic.keyed_by}`)" in section.partition("\n")[0], name
            assert documented_types(section) == {}, f"{name} carries no Millrace message type"


@pytest.mark.parametrize("topic", CONTRACT_TOPICS, ids=lambda topic: topic.name)
def test_the_topic_section_lists_exactly_the_types_the_code_produces(topic: Topic):
    name, section, placeholder = section_of(topic)
    heading = section.partition("\n")[0]
    assert f"(key: `{topic.keyed_by}`)" in heading, f"{name}: the heading should give the key"
    if placeholder is not None:
        assert f"`{placeholder}`" in section, f"{name} does not name its {placeholder!r} topic"
    code = {type_: model.__name__ for type_, model in members(CARRIES[topic]).items()}
    documented = documented_types(section)
    missing = sorted(set(code) - set(documented))
    unknown = sorted(set(documented) - set(code))
    assert not missing and not unknown, (
        f"{name}: the code produces types the doc does not list: {missing}; "
        f"the doc lists types the code does not produce: {unknown}"
    )
    assert documented == code, f"{name}: the models named do not match the code's"


def test_every_dead_letter_topic_is_described_with_every_dead_letter_field():
    assert any(topic.dead_letter for topic in ALL_TOPICS)
    section = sections().get("<topic>.dlq")
    assert section is not None, "no `<topic>.dlq` section"
    assert "`DeadLetter`" in section
    for field in DeadLetter.model_fields:
        assert f"`{field}`" in section, f"the dead-letter section does not name {field}"


def test_the_document_names_no_message_type_the_code_does_not_know():
    known = {type_ for union in CARRIES.values() for type_ in members(union)}
    families = {type_.split(".")[0] for type_ in known}
    named = {f"{family}.{rest}" for family, rest in TYPE_LIKE.findall(DOC) if family in families}
    assert not named - known, f"{DOC_PATH.name} names types the code does not know: {sorted(named - known)}"
    topic_sections = {name for name in sections() if "." in name}
    matched = {section_of(topic)[0] for topic in ALL_TOPICS} | {"<topic>.dlq"}
    assert not topic_sections - matched, (
        f"sections about topics the registry lacks: {topic_sections - matched}"
    )
