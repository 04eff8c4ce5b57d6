"""The single-table key layout, exactly as seed 000 describes it, in one place.

    settings  PK=<owner>  SK=SETTINGS
    session   PK=<owner>  SK=SESSION#<startedAt>#<sessionId>#META   GSI1PK=SESSION#<id>  GSI1SK=META
    message   PK=<owner>  SK=SESSION#<sessionId>#MSG#<createdAt>    GSI1PK=SESSION#<id>  GSI1SK=MSG#<createdAt>
    client id PK=<owner>  SK=CLIENTSESSION#<clientSessionId>          (sessionId; only when the client chose one)

<owner> is ``DEVICE#<deviceId>`` (device mode, the seed's MVP) or ``USER#<cognito sub>``, and comes
from the authorizer only. Everything that belongs to a session (messages, idempotency markers, later
transcripts and analyses) has a sort key starting ``SESSION#<sessionId>#``, so one strongly
consistent query finds it all for deletion. Session META keys start with the ISO start time
(``SESSION#2…``) while per-session keys start with a ULID (``SESSION#0…``), so a key range selects
the sessions without reading their messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.core.ids import iso_millis, ulid_millis


@dataclass(frozen=True)
class KeyLayout:
    """One key's layout, its parts in ``{}`` (``KeyLayout("PROMPT#{}")("01J…")`` -> ``PROMPT#01J…``); a
    part may carry a format (``{:05d}``). Called with exactly as many parts as the layout has."""

    layout: str

    def __call__(self, *parts: str | int) -> str:
        if len(parts) != self.layout.count("{"):
            raise TypeError(f"the key {self.layout!r} takes {self.layout.count('{')} parts, got {len(parts)}")
        return self.layout.format(*parts)


SETTINGS_SK = "SETTINGS"
SESSION_PREFIX = "SESSION#"
# ISO start times of years 2000-9999; ULID-led keys ("SESSION#0…") sort before this range.
SESSION_META_RANGE = ("SESSION#2000", "SESSION#9999~")
GSI1 = "GSI1"


def session_started_at(session_id: str) -> str:
    """A session's start time, read from its ULID (the time its META sort key begins with)."""
    return iso_millis(ulid_millis(session_id))


def session_meta_sk(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_started_at(session_id)}#{session_id}#META"


session_gsi1pk = KeyLayout(SESSION_PREFIX + "{}")  # <sessionId>
# A client's own id for a session (the item holds Parley's ``sessionId``). Outside the ``SESSION#``
# ranges, so neither the session list nor a session's children include it.
client_session_sk = KeyLayout("CLIENTSESSION#{}")  # <clientSessionId>


def session_child_sk(session_id: str, *parts: str) -> str:
    """``SESSION#<sessionId>#<part>#<part>…``: the sort key of anything that belongs to a session, so
    its deletion (one query of ``session_children_prefix``) finds it."""
    return "#".join((f"{SESSION_PREFIX}{session_id}", *parts))


def session_children_prefix(session_id: str) -> str:
    return session_child_sk(session_id, "")


def message_sk(session_id: str, created_at: str) -> str:
    return session_child_sk(session_id, "MSG", created_at)


def message_marker_sk(session_id: str, message_id: str) -> str:
    return session_child_sk(session_id, "MSGID", message_id)


def pending_reply_sk(session_id: str, reply_id: str) -> str:
    """A tutor reply kept when its save failed, so a repeat of the call saves it instead of paying the
    model again; under the session's keys, so deleting the session deletes it too."""
    return session_child_sk(session_id, "PENDINGREPLY", reply_id)


# -- usage (seed 003's `usage` and `usage-tracking` tables, as items in the one table) ---------
usage_month_sk = KeyLayout("USAGE#MONTH#{}")  # monthly totals per owner: USAGE#MONTH#2026-11
usage_day_sk = KeyLayout("USAGE#DAY#{}#{}")  # daily totals per owner and engine: USAGE#DAY#2026-11-22#anthropic
usage_days_prefix = KeyLayout("USAGE#DAY#{}-")  # all daily totals of a month: USAGE#DAY#2026-11-
# Marks a usage event as counted (exactly once per event id); expires after a while.
usage_event_marker_sk = KeyLayout("USAGE#EVENT#{}")
QUOTA_SK = "QUOTA"  # a per-owner override of the monthly limits

# -- proofreading (seed 003's prompts, files, conversations and websocket-connections tables) ----
#     prompt        PK=<owner>  SK=PROMPT#<promptId>                 GSI1PK=PROMPTS#<owner>  GSI1SK=PROMPT#<promptId>
#     prompt file   PK=<owner>  SK=PROMPT#<promptId>#FILE#<fileId>
#     conversation  PK=<owner>  SK=CONV#<conversationId>             GSI1PK=CONVENGINE#<owner>#<engine>
#                                                                   GSI1SK=CONV#<conversationId>
#     exchange      PK=<owner>  SK=CONVTURN#<conversationId>#<turn, 5 digits>
#     connection    PK=WSCONN#<connectionId>  SK=CONNECTION  (owner, expiresAt)
#     ws request    PK=<owner>  SK=WSREQ#<requestId>  (status, attempt, connectionId, outcome; data.ws_requests)
# Prompt ids and conversation ids are ULIDs, so SK order is creation order. Prompts are listed
# through GSI1 (the base table's PROMPT# range also holds the files); conversations straight from
# the base table ("CONVTURN#" does not begin with "CONV#"), or per engine through GSI1 — the seed's
# engineType-index.
PROMPT_PREFIX = "PROMPT#"
CONVERSATION_PREFIX = "CONV#"
CONNECTION_SK = "CONNECTION"
prompt_sk = KeyLayout(PROMPT_PREFIX + "{}")  # <promptId>
prompts_gsi1pk = KeyLayout("PROMPTS#{}")  # <owner>
prompt_files_prefix = KeyLayout(PROMPT_PREFIX + "{}#FILE#")  # <promptId>
prompt_file_sk = KeyLayout(PROMPT_PREFIX + "{}#FILE#{}")  # <promptId>, <fileId>
conversation_sk = KeyLayout(CONVERSATION_PREFIX + "{}")  # <conversationId>
conversation_engine_gsi1pk = KeyLayout("CONVENGINE#{}#{}")  # <owner>, <engine>
conversation_turn_prefix = KeyLayout("CONVTURN#{}#")  # <conversationId>
conversation_turn_sk = KeyLayout("CONVTURN#{}#{:05d}")  # <conversationId>, <turn>
connection_pk = KeyLayout("WSCONN#{}")  # <connectionId>
ws_request_sk = KeyLayout("WSREQ#{}")  # <requestId>


# -- speech-to-text (issue 4) ---------------------------------------------------------------------
#     transcription  PK=<owner>  SK=TRANSCRIPTION#<transcriptionId>    (status, text, words, reason)
#     transcript     PK=<owner>  SK=SESSION#<sessionId>#TRANSCRIPT#<transcriptionId>  (when a session was given)
transcription_sk = KeyLayout("TRANSCRIPTION#{}")  # <transcriptionId>


def session_transcript_sk(session_id: str, transcription_id: str) -> str:
    return session_child_sk(session_id, "TRANSCRIPT", transcription_id)


def session_transcripts_prefix(session_id: str) -> str:
    """Transcripts saved under a session: ``SESSION#<sessionId>#TRANSCRIPT#<transcriptionId>``."""
    return session_child_sk(session_id, "TRANSCRIPT", "")


# -- analysis (issue 6) --------------------------------------------------------------------------
#     analysis      PK=<owner>  SK=SESSION#<sessionId>#ANALYSIS   (status, fingerprint, report, scores)
# Under the session's prefix, so deleting the session deletes its analysis.
def analysis_sk(session_id: str) -> str:
    return session_child_sk(session_id, "ANALYSIS")


# -- the transcription workflow's event-driven wait (issues 4 and 8) ------------------------------
#     task token    PK=TRANSCRIBEJOB#<Transcribe job name>  SK=TASK_TOKEN  (taskToken, transcriptionId,
#                   executionArn, expiresAt)
# Written by the state machine itself (aws-sdk:dynamodb:putItem.waitForTaskToken), read by the
# job-events Lambda, which knows only the job name from Transcribe's event. Expires after a day.
JOB_WAIT_SK = "TASK_TOKEN"


transcribe_job_pk = KeyLayout("TRANSCRIBEJOB#{}")  # <Transcribe job name>


# -- rate limits (the WebSocket message function's per-owner count) ------------------------------
#     window        PK=<owner>  SK=RATE#<what>#<window start, epoch seconds>  (requests, expiresAt)
rate_window_sk = KeyLayout("RATE#{}#{}")  # <what>, <window start>
