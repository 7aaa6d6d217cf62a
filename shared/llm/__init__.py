"""Language models: any OpenAI-compatible Chat Completions endpoint, or the built-in mock."""

from threadline.shared.llm.base import (
    ChatRequest,
    Finish,
    Model,
    ModelError,
    ReasoningDelta,
    TextDelta,
    ToolCall,
)
from threadline.shared.llm.factory import model_for

__all__ = [
    "ChatRequest",
    "Finish",
    "Model",
    "ModelError",
    "ReasoningDelta",
    "TextDelta",
    "ToolCall",
    "model_for",
]
