"""The single-table key layout, exactly as seed 000 describes it, in one place.

    settings  PK=<owner>  SK=SETTINGS
    session   PK=<owner>  SK=SESSION#<startedAt>#<sessionId>#META   GSI1PK=SESSION#<id>  GSI1SK=META
    message   PK=<owner>  SK=SESSION#<sessionId>#MSG#<createdAt>    GSI1PK=SESSION#<id>  GSI1SK=MSG#<createdAt>

<owner> is ``DEVICE#<deviceId>`` (device mode, the seed's MVP) or ``USER#<cognito sub>``, and comes
from the authorizer only. Everything that belongs to a session (messages, idempotency markers, later
transcripts and analyses) has a sort key starting ``SESSION#<sessionId>#``, so one strongly
consistent query finds it all for deletion. Session META keys start with the ISO start time
(``SESSION#2…``) while per-session keys start with a ULID (``SESSION#0…``), so a key range selects
the sessions without reading their messages.
"""

from __future__ import annotations

from .ids import iso_millis, ulid_millis

SETTINGS_SK = "SETTINGS"
SESSION_PREFIX = "SESSION#"
# ISO start times of years 2000-9999; ULID-led keys ("SESSION#0…") sort before this range.
SESSION_META_RANGE = ("SESSION#2000", "SESSION#9999~")
GSI1 = "GSI1"


def session_meta_sk(session_id: str) -> str:
    return f"{SESSION_PREFIX}{iso_millis(ulid_millis(session_id))}#{session_id}#META"


def session_gsi1pk(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def session_children_prefix(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}#"


def message_sk(session_id: str, created_at: str) -> str:
    return f"{SESSION_PREFIX}{session_id}#MSG#{created_at}"


def message_marker_sk(session_id: str, message_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}#MSGID#{message_id}"


# -- usage (seed 003's `usage` and `usage-tracking` tables, as items in the one table) ---------
def usage_month_sk(month: str) -> str:
    """Monthly totals per owner: ``USAGE#MONTH#2026-11``."""
    return f"USAGE#MONTH#{month}"


def usage_day_sk(day: str, engine: str) -> str:
    """Daily totals per owner and engine: ``USAGE#DAY#2026-11-22#anthropic``."""
    return f"USAGE#DAY#{day}#{engine}"


def usage_event_marker_sk(event_id: str) -> str:
    """Marks a usage event as counted (exactly once per event id); expires after a while."""
    return f"USAGE#EVENT#{event_id}"


QUOTA_SK = "QUOTA"  # a per-owner override of the monthly limits
