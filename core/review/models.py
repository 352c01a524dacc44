"""The figures of a phase review, as typed values.

They cross the client boundary (a job's result, the GUI's Phase review page)
and feed both renderers, so they are pydantic models: one shape for JSON,
Markdown and HTML alike. Durations are milliseconds for single calls and
seconds for sessions, the units people read them in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PERCENTILE_METHOD = (
    "linear interpolation between closest ranks (position (n-1)·p over the sorted values, "
    "numpy's default); store and DB operations come from the persisted latency histograms: "
    "rank q·n located inside log-spaced buckets, so within a bucket's width (about 15 %)"
)


class Overview(BaseModel):
    phase: str
    status: str
    created_at: str | None = None
    closed_at: str | None = None
    sessions: int = 0
    subagent_sessions: int = 0
    messages: int = 0
    unparsable_lines: int = 0
    first_activity: str | None = None
    last_activity: str | None = None
    sessions_without_usage: int = 0
    responses: int = Field(0, description="unique (message id, request id) pairs")
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_responses: int = 0


class Latency(BaseModel):
    kind: Literal["tool", "agent", "operation"]
    name: str = Field(description="tool name, agent, or `op@tier` for a store/DB operation")
    count: int
    errors: int = 0
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    exact: bool = Field(True, description="False when read from histogram buckets")


class SlowCall(BaseModel):
    session_id: str
    tool: str
    duration_ms: float
    started_at: str | None = None


class SlowSession(BaseModel):
    session_id: str
    agent: str | None = None
    title: str | None = None
    duration_s: float
    tool_time_s: float = Field(description="summed duration of its tool calls")
    messages: int


class ErrorGroup(BaseModel):
    origin: Literal["tool", "import"]
    name: str = Field(description="the tool, or `unparsable line`")
    signature: str = Field(description="the first line of the error, which groups them")
    count: int
    first_seen: str | None = None
    last_seen: str | None = None
    example: str = Field(description="one full message (redacted, clipped)")
    example_session: str


class ToolUsage(BaseModel):
    tool: str
    calls: int
    errors: int
    success_rate: float | None = Field(None, description="of the calls that got a result")
    total_ms: float
    time_share: float | None = Field(None, description="of all timed tool calls in the phase")


class AgentPerformance(BaseModel):
    agent: str
    sessions: int
    total_duration_s: float
    avg_duration_s: float | None = None
    tool_calls: int
    tool_errors: int
    success_rate: float | None = Field(None, description="tool calls that did not fail")
    tokens: int = Field(description="input + output + cache write + cache read")
    tokens_per_session: float | None = None
    cost_usd: float


class TokenCost(BaseModel):
    key: str
    responses: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float
    unpriced_responses: int = 0


class StorageTier(BaseModel):
    tier: Literal["local", "backup", "archive"]
    target: str
    sessions: int
    raw_bytes: int
    stored_bytes: int
    ratio: float | None = Field(None, description="raw / stored: 4.0 is a quarter the size")


class CacheRate(BaseModel):
    name: str
    basis: str = Field(description="what was counted: tokens per model, or lookups since start")
    hits: int
    lookups: int
    hit_rate: float | None = None


class Evidence(BaseModel):
    label: str
    value: str


class Recommendation(BaseModel):
    rule: str
    severity: Literal["info", "warn"]
    title: str
    detail: str
    evidence: list[Evidence]


class PhaseReview(BaseModel):
    overview: Overview
    latency: list[Latency] = Field(default_factory=list)
    slowest_calls: list[SlowCall] = Field(default_factory=list)
    slowest_sessions: list[SlowSession] = Field(default_factory=list)
    errors: list[ErrorGroup] = Field(default_factory=list)
    tools: list[ToolUsage] = Field(default_factory=list)
    agents: list[AgentPerformance] = Field(default_factory=list)
    cost_by_model: list[TokenCost] = Field(default_factory=list)
    cost_by_agent: list[TokenCost] = Field(default_factory=list)
    cost_by_session: list[TokenCost] = Field(default_factory=list)
    cost_by_day: list[TokenCost] = Field(default_factory=list)
    storage: list[StorageTier] = Field(default_factory=list)
    cache: list[CacheRate] = Field(default_factory=list)
    recommendations: list[Recommendation] = Field(default_factory=list)
    percentile_method: str = PERCENTILE_METHOD
    generated_at: str = ""
    tool_version: str = ""
