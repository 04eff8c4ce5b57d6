"""The "usage recorded" event: one per billable call (model tokens, Polly characters, Transcribe
seconds), the contract between every producer and the usage recorder (EventBridge ``detail``).

This module knows nothing of prices: ``parley.usage.pricing`` prices an event, and
``parley.usage.publisher`` prices and publishes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from parley.core.ids import iso_micros, utcnow

if TYPE_CHECKING:
    from parley.usage.quota import Reservation

SOURCE = "parley"
DETAIL_TYPE = "UsageRecorded"
Product = Literal["tutor", "proofreading"]
UsageEngine = Literal["anthropic", "bedrock", "offline", "polly", "transcribe"]
REDACTED_OWNER = "(redacted)"
RESERVATION_ID_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])\.[0-9A-HJKMNP-TV-Z]{26}$"  # <YYYY-MM>.<ULID>


class UsageEvent(BaseModel):
    """The event contract (EventBridge ``detail``), documented in docs/api/usage.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=8, max_length=64)
    owner: str = Field(pattern=r"^(DEVICE|USER)#[A-Za-z0-9._-]{1,128}$")
    product: Product
    engine: UsageEngine
    model: str = Field(min_length=1, max_length=128, description=(
        "The model id for AI engines; the voice engine for polly (standard, neural, long-form, generative); "
        "standard or streaming for transcribe"))
    operation: str = Field(min_length=1, max_length=64, description="chat, analysis, proofread, tts, stt…")
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    characters: int = Field(0, ge=0)
    audio_seconds: float = Field(0, ge=0)
    web_searches: int = Field(0, ge=0)
    estimated_cost_usd: float = Field(0, ge=0, description="Set by UsagePublisher from the price table")
    occurred_at: str = Field(default_factory=lambda: iso_micros(utcnow()))
    reservation_id: str | None = Field(None, pattern=RESERVATION_ID_PATTERN, description=(
        "The quota reservation this call held (parley.usage.quota): the recorder settles it with this event"))
    reserved_tokens: int = Field(0, ge=0, description="The tokens that reservation held")
    reserved_cost_usd: float = Field(0, ge=0, description="The cost that reservation held")

    @field_validator("occurred_at")
    @classmethod
    def _iso_with_zone(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("occurred_at must be an ISO 8601 timestamp") from exc
        if moment.tzinfo is None:
            raise ValueError("occurred_at must carry a time zone (e.g. Z)")
        return iso_micros(moment)

    @property
    def occurred(self) -> datetime:
        return datetime.fromisoformat(self.occurred_at.replace("Z", "+00:00"))

    def settling(self, reservation: Reservation | None) -> UsageEvent:
        """This event, naming the reservation it settles (if any)."""
        if reservation is None:
            return self
        return self.model_copy(update={"reservation_id": reservation.id, "reserved_tokens": reservation.tokens,
                                       "reserved_cost_usd": reservation.cost_usd})

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def entry(self, bus_name: str) -> dict[str, Any]:
        """The PutEvents entry for this event."""
        return {"Source": SOURCE, "DetailType": DETAIL_TYPE, "EventBusName": bus_name,
                "Detail": self.model_dump_json()}

    def envelope(self) -> dict[str, Any]:
        """The event as EventBridge delivers it to a target (the shape the recorder reads)."""
        return {"version": "0", "id": str(uuid.uuid4()), "source": SOURCE, "detail-type": DETAIL_TYPE,
                "time": self.occurred_at[:19] + "Z", "resources": [], "detail": self.model_dump(mode="json")}


