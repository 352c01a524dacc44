"""Path parameters of the set-up routes (their bodies are the `core.setup.models` specs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TargetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class FlowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flow_id: str
