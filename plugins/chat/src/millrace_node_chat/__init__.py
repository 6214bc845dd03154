"""``chat_message``: post a message to a chat's incoming webhook. The node type's declaration, read
by every service that validates or runs workflows; it imports the workflow language only, and names
its handler (``handler.build``, which only the node runner imports) by path."""

from __future__ import annotations

from typing import Annotated

from millrace_common.language.node_types import NodeType
from millrace_common.language.workflow_configs import NodeConfig
from pydantic import Field

__all__ = ["NODE_TYPE", "ChatMessageConfig"]

Url = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https?://|\{\{)")]


class ChatMessageConfig(NodeConfig):
    """A message posted as JSON to a chat's incoming-webhook URL."""

    url: Url = Field(description="The chat's incoming-webhook URL")
    text: str = Field(min_length=1, max_length=40_000, description="The message")
    username: str | None = Field(default=None, max_length=200, description="The sender shown, if allowed")
    channel: str | None = Field(default=None, max_length=200, description="The channel, if allowed")


NODE_TYPE = NodeType(
    type="chat_message",
    config=ChatMessageConfig,
    category="Chat",
    runner_class="http",
    outputs=("delivered", "status", "body"),
    handler="millrace_node_chat.handler:build",
    description="Post a message to a chat's incoming webhook",
)
