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

from parley.core.ids import iso_millis, ulid_millis

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


def session_gsi1pk(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def client_session_sk(client_session_id: str) -> str:
    """A client's own id for a session -> ``CLIENTSESSION#<id>`` (the item holds Parley's ``sessionId``).
    Outside the ``SESSION#`` ranges, so neither the session list nor a session's children include it."""
    return f"CLIENTSESSION#{client_session_id}"


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


def prompt_sk(prompt_id: str) -> str:
    return f"{PROMPT_PREFIX}{prompt_id}"


def prompts_gsi1pk(owner: str) -> str:
    return f"PROMPTS#{owner}"


def prompt_files_prefix(prompt_id: str) -> str:
    return f"{PROMPT_PREFIX}{prompt_id}#FILE#"


def prompt_file_sk(prompt_id: str, file_id: str) -> str:
    return prompt_files_prefix(prompt_id) + file_id


def conversation_sk(conversation_id: str) -> str:
    return f"{CONVERSATION_PREFIX}{conversation_id}"


def conversation_engine_gsi1pk(owner: str, engine: str) -> str:
    return f"CONVENGINE#{owner}#{engine}"


def conversation_turn_prefix(conversation_id: str) -> str:
    return f"CONVTURN#{conversation_id}#"


def conversation_turn_sk(conversation_id: str, turn: int) -> str:
    return conversation_turn_prefix(conversation_id) + f"{turn:05d}"


def connection_pk(connection_id: str) -> str:
    return f"WSCONN#{connection_id}"


def ws_request_sk(request_id: str) -> str:
    return f"WSREQ#{request_id}"


def usage_days_prefix(month: str) -> str:
    """All daily usage totals of a month: ``USAGE#DAY#2026-11-``."""
    return f"USAGE#DAY#{month}-"


# -- speech-to-text (issue 4) ---------------------------------------------------------------------
#     transcription  PK=<owner>  SK=TRANSCRIPTION#<transcriptionId>    (status, text, words, reason)
#     transcript     PK=<owner>  SK=SESSION#<sessionId>#TRANSCRIPT#<transcriptionId>  (when a session was given)
def transcription_sk(transcription_id: str) -> str:
    return f"TRANSCRIPTION#{transcription_id}"


def session_transcript_sk(session_id: str, transcription_id: str) -> str:
    return session_child_sk(session_id, "TRANSCRIPT", transcription_id)


# -- analysis (issue 6) --------------------------------------------------------------------------
#     analysis      PK=<owner>  SK=SESSION#<sessionId>#ANALYSIS   (status, fingerprint, report, scores)
# Under the session's prefix, so deleting the session deletes its analysis.
def analysis_sk(session_id: str) -> str:
    return session_child_sk(session_id, "ANALYSIS")


def session_transcripts_prefix(session_id: str) -> str:
    """Transcripts saved under a session: ``SESSION#<sessionId>#TRANSCRIPT#<transcriptionId>``."""
    return session_child_sk(session_id, "TRANSCRIPT", "")


# -- the transcription workflow's event-driven wait (issues 4 and 8) ------------------------------
#     task token    PK=TRANSCRIBEJOB#<Transcribe job name>  SK=TASK_TOKEN  (taskToken, transcriptionId,
#                   executionArn, expiresAt)
# Written by the state machine itself (aws-sdk:dynamodb:putItem.waitForTaskToken), read by the
# job-events Lambda, which knows only the job name from Transcribe's event. Expires after a day.
JOB_WAIT_SK = "TASK_TOKEN"


def transcribe_job_pk(job_name: str) -> str:
    return f"TRANSCRIBEJOB#{job_name}"


# -- rate limits (the WebSocket message function's per-owner count) ------------------------------
#     window        PK=<owner>  SK=RATE#<what>#<window start, epoch seconds>  (requests, expiresAt)
def rate_window_sk(what: str, window_start: int) -> str:
    return f"RATE#{what}#{window_start}"
