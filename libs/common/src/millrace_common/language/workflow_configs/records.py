"""The record node configs: create, update, find and delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.conditions import Condition
from millrace_common.language.workflow_configs.base import NodeConfig, Path, PipelineId, _Frozen


class RecordCreateConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id"})

    pipeline_id: PipelineId
    data: JsonObject


class RecordUpdateConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id", "mode"})

    pipeline_id: PipelineId
    record_id: str = Field(min_length=1, max_length=1000)
    data: JsonObject
    mode: Literal["merge", "replace"] = "merge"


class SortKey(_Frozen):
    field: str = Field(min_length=1, max_length=200)
    direction: Literal["asc", "desc"] = "asc"


class RecordFindConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id", "filters", "sort", "limit"})

    pipeline_id: PipelineId
    filters: Condition | None = None
    sort: tuple[SortKey, ...] = Field(default=(), max_length=5)
    limit: int = Field(default=100, ge=1, le=1000)

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        if self.filters is not None:
            yield ("filters",), self.filters, False


class RecordDeleteConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id"})

    pipeline_id: PipelineId
    record_id: str = Field(min_length=1, max_length=1000)
