"""The "usage recorded" event: one per billable call, published on the app's EventBridge bus.

Every billable call (model tokens, Polly characters, Transcribe seconds) publishes exactly one
``UsageEvent`` through ``UsagePublisher.publish``; the usage recorder adds it, once per event id,
to the owner's monthly and daily-per-engine totals.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .ids import iso_micros, utcnow

SOURCE = "parley"
DETAIL_TYPE = "UsageRecorded"
Product = Literal["tutor", "proofreading"]
UsageEngine = Literal["anthropic", "bedrock", "offline", "polly", "transcribe"]


class UsageEvent(BaseModel):
    """The event contract (EventBridge ``detail``), documented in the README."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=8, max_length=64)
    owner: str = Field(pattern=r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
    product: Product
    engine: UsageEngine
    model: str = Field(min_length=1, max_length=128)
    operation: str = Field(min_length=1, max_length=64, description="chat, analysis, proofread, tts, stt…")
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    characters: int = Field(0, ge=0)
    audio_seconds: float = Field(0, ge=0)
    web_searches: int = Field(0, ge=0)
    estimated_cost_usd: float = Field(0, ge=0)
    occurred_at: str = Field(default_factory=lambda: iso_micros(utcnow()))

    @property
    def occurred(self) -> datetime:
        return datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00"))

    def entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry for this event."""
        return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": bus_name,
                "Detail": self.model_dump_json()}


class UsagePublisher:
    """Publishes usage events on the app's bus. Issue #5 owns pricing, retries and parking."""

    def __init__(self, events_client: Any, bus_name: str) -> None:
        self.events = events_client
        self.bus_name = bus_name

    def publish(self, event: UsageEvent) -> None:
        self.events.put_events(Entries=[event.entry(self.bus_name)])
