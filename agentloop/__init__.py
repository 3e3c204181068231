"""agentloop: tool-calling agents over any OpenAI-compatible chat-completions API."""

import importlib
from typing import TYPE_CHECKING

from ._agent import Agent, OutputValidator
from ._errors import (
    AgentloopError,
    AllModelsFailedError,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContextLengthError,
    ContextWindowError,
    IncompleteStreamError,
    InsufficientCreditsError,
    InternalServerError,
    MCPServerError,
    MCPTimeoutError,
    MissingAPIKeyError,
    ModerationError,
    NotFoundError,
    OutputError,
    OutputTruncatedError,
    OutputValidationError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    RefusalError,
    RunError,
    SchemaError,
    SettingsError,
    ToolExecutionError,
    ToolRetry,
    ToolsetError,
    UsageError,
    UsageLimitExceeded,
)
from ._history_policy import (
    DEFAULT_HISTORY_POLICY,
    HistoryPolicy,
    WindowBudget,
    chain,
    drop_oldest,
    truncate_tool_results,
)
from ._messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    RequestUsage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    messages_from_json,
    messages_to_json,
)
from ._settings import ModelSettings
from ._tools import Tool, tool
from ._wire.compatible import OpenAICompatible
from ._wire.options import ClientOptions
from ._wire.profiles import (
    DEFAULT_PROFILE,
    LLAMA_CPP_PROFILE,
    LLAMA_SERVER_PROFILE,
    LM_STUDIO_PROFILE,
    OLLAMA_PROFILE,
    OPENAI_PROFILE,
    OPENROUTER_PROFILE,
    OPTIMISTIC_PROFILE,
    VLLM_PROFILE,
    ModelProfile,
)
from ._wire.retry import RetryPolicy

# The rest loads on first use (PEP 562 `__getattr__` below): what `Agent`, `tool` and
# `OpenAICompatible` do not need (the run loop, streams, prices, token counting...) stays out of
# `import agentloop`, which is imported by every script that uses the package.
if TYPE_CHECKING:
    from ._context import RunContext
    from ._deferred import PendingApproval
    from ._events import (
        PartialOutput,
        ReasoningDelta,
        RefusalDelta,
        RunEvent,
        RunFinished,
        StreamDelta,
        TextDelta,
        ToolArgumentsDelta,
        ToolCallFinished,
        ToolCallStarted,
        TurnFinished,
    )
    from ._handoff import Handoff, handoff
    from ._history import repair_history
    from ._limits import Limits
    from ._loop.plan import Instructions, Prompt, RunOptions
    from ._loop.run_stream import RunStream
    from ._prices import ModelInfo, lookup_model, register_model
    from ._progress import WorkingLine
    from ._result import RequestStats, RunResult, RunTiming
    from ._summarize import summarize_older
    from ._tool_return import Image, ToolReturn
    from ._toolsets import OpenToolset, Toolset
    from ._usage import Usage
    from ._wire.fallback import FallbackModel
    from ._wire.hosted import (
        VLLM,
        Anthropic,
        Azure,
        DeepSeek,
        Fireworks,
        Gemini,
        Groq,
        LMStudio,
        Mistral,
        Ollama,
        Together,
    )
    from ._wire.models import Model, infer_model
    from ._wire.providers import OpenAI, OpenRouter
    from ._wire.rate_limit import RateLimit
    from ._wire.tokens import TokenCount, count_request_tokens, count_text_tokens

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "RunContext": "._context",
    "PartialOutput": "._events",
    "ReasoningDelta": "._events",
    "RefusalDelta": "._events",
    "RunEvent": "._events",
    "RunFinished": "._events",
    "StreamDelta": "._events",
    "TextDelta": "._events",
    "ToolArgumentsDelta": "._events",
    "ToolCallFinished": "._events",
    "ToolCallStarted": "._events",
    "TurnFinished": "._events",
    "PendingApproval": "._deferred",
    "Handoff": "._handoff",
    "handoff": "._handoff",
    "repair_history": "._history",
    "Limits": "._limits",
    "Instructions": "._loop.plan",
    "Prompt": "._loop.plan",
    "RunOptions": "._loop.plan",
    "RunStream": "._loop.run_stream",
    "Image": "._tool_return",
    "ToolReturn": "._tool_return",
    "ModelInfo": "._prices",
    "lookup_model": "._prices",
    "register_model": "._prices",
    "WorkingLine": "._progress",
    "RequestStats": "._result",
    "RunResult": "._result",
    "RunTiming": "._result",
    "summarize_older": "._summarize",
    "OpenToolset": "._toolsets",
    "Toolset": "._toolsets",
    "Usage": "._usage",
    "FallbackModel": "._wire.fallback",
    "Model": "._wire.models",
    "infer_model": "._wire.models",
    "RateLimit": "._wire.rate_limit",
    "Anthropic": "._wire.hosted",
    "Azure": "._wire.hosted",
    "DeepSeek": "._wire.hosted",
    "Fireworks": "._wire.hosted",
    "Gemini": "._wire.hosted",
    "Groq": "._wire.hosted",
    "LMStudio": "._wire.hosted",
    "Mistral": "._wire.hosted",
    "Ollama": "._wire.hosted",
    "Together": "._wire.hosted",
    "VLLM": "._wire.hosted",
    "OpenAI": "._wire.providers",
    "OpenRouter": "._wire.providers",
    "TokenCount": "._wire.tokens",
    "count_request_tokens": "._wire.tokens",
    "count_text_tokens": "._wire.tokens",
}
"""The module of each name imported on first use."""

__all__ = [
    "DEFAULT_HISTORY_POLICY",
    "DEFAULT_PROFILE",
    "LLAMA_CPP_PROFILE",
    "LLAMA_SERVER_PROFILE",
    "LM_STUDIO_PROFILE",
    "OLLAMA_PROFILE",
    "OPENAI_PROFILE",
    "OPENROUTER_PROFILE",
    "OPTIMISTIC_PROFILE",
    "VLLM",
    "VLLM_PROFILE",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "AgentloopError",
    "AllModelsFailedError",
    "Anthropic",
    "AssistantMessage",
    "AuthenticationError",
    "Azure",
    "BadRequestError",
    "ClientOptions",
    "ConflictError",
    "ContextLengthError",
    "ContextWindowError",
    "DeepSeek",
    "FallbackModel",
    "Fireworks",
    "Gemini",
    "Groq",
    "Handoff",
    "HistoryPolicy",
    "Image",
    "IncompleteStreamError",
    "Instructions",
    "InsufficientCreditsError",
    "InternalServerError",
    "LMStudio",
    "Limits",
    "MCPServerError",
    "MCPTimeoutError",
    "Message",
    "MissingAPIKeyError",
    "Mistral",
    "Model",
    "ModelInfo",
    "ModelProfile",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModerationError",
    "NotFoundError",
    "Ollama",
    "OpenAI",
    "OpenAICompatible",
    "OpenRouter",
    "OpenToolset",
    "OutputError",
    "OutputTruncatedError",
    "OutputValidationError",
    "OutputValidator",
    "PartialOutput",
    "PendingApproval",
    "PermissionDeniedError",
    "Prompt",
    "ProtocolError",
    "RateLimit",
    "RateLimitError",
    "ReasoningDelta",
    "RefusalDelta",
    "RefusalError",
    "RequestStats",
    "RequestUsage",
    "RetryPolicy",
    "RunContext",
    "RunError",
    "RunEvent",
    "RunFinished",
    "RunOptions",
    "RunResult",
    "RunStream",
    "RunTiming",
    "SchemaError",
    "SettingsError",
    "StreamDelta",
    "SystemMessage",
    "TextDelta",
    "Together",
    "TokenCount",
    "Tool",
    "ToolArgumentsDelta",
    "ToolCall",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolExecutionError",
    "ToolMessage",
    "ToolRetry",
    "ToolReturn",
    "Toolset",
    "ToolsetError",
    "TurnFinished",
    "Usage",
    "UsageError",
    "UsageLimitExceeded",
    "UserMessage",
    "WindowBudget",
    "WorkingLine",
    "chain",
    "count_request_tokens",
    "count_text_tokens",
    "drop_oldest",
    "handoff",
    "infer_model",
    "lookup_model",
    "messages_from_json",
    "messages_to_json",
    "register_model",
    "repair_history",
    "summarize_older",
    "tool",
    "truncate_tool_results",
]


def __getattr__(name: str) -> object:
    """Import a name of `_LAZY` on first use; later uses find it in the module's globals."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
