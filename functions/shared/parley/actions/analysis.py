"""The ``analyze`` action (POST + GET /sessions/{id}/analysis, waited for).

The original backend analysed the conversation it was sent; Parley analyses sessions. With
``messages`` only, the saved session holding them is found (or saved) first.
"""

from __future__ import annotations

import hashlib

from parley.actions.context import Answer, Call, Services
from parley.actions.errors import AnalysisFailed
from parley.actions.replies import ActionAnalysisReply, seed_analysis
from parley.actions.requests import ActionSettings, ActionTurn, AnalyzeAction
from parley.analysis.service import AnalysisStatus
from parley.core.errors import NotEnoughToAnalyse, QuotaExceeded, ServiceUnavailable
from parley.tutor.models import NewMessage, Session, StartSession
from parley.tutor.service import Tutor

# analyze with messages only: how many of the owner's newest sessions are compared with them.
RECENT_SESSIONS_MATCHED = 3


def analyze(services: Services, owner: str, request: AnalyzeAction, call: Call) -> Answer:
    analyses = services.analyses()
    if request.session_id is not None:
        session_id = services.tutor.resolve_session_id(owner, request.session_id)
        shown_id = request.session_id
    else:
        session = session_of(services.tutor, owner, request, analyses.min_learner_turns)
        session_id, shown_id = session.session_id, session.client_session_id or session.session_id
    status, _started = analyses.start(owner, session_id)
    if status.status == "running":
        status = call.wait(lambda: analyses.get(owner, session_id), lambda s: s.status != "running")
    return analysis_reply(status, shown_id)


def session_of(tutor: Tutor, owner: str, request: AnalyzeAction, min_learner_turns: int) -> Session:
    """The saved session holding ``messages``. The original clients save their conversation with
    start_session and save_message, then send it again to analyze: a recent session whose learner
    messages are exactly these is that conversation. Otherwise the messages are saved as a session
    of their own, whose id derives from them, so sending the same conversation again finds it (and
    its report) instead of saving a copy."""
    turns = request.messages or []
    learner = sum(1 for t in turns if t.role == "user")
    if learner < min_learner_turns:
        raise NotEnoughToAnalyse(
            f"Too little to analyse: {learner} learner turn(s); at least {min_learner_turns} are needed.",
            details=[{"field": "body.messages", "message": f"needs at least {min_learner_turns} user messages",
                      "value": learner}])
    if saved := saved_session_with(tutor, owner, turns):
        return saved
    digest = hashlib.sha256("\x1e".join(f"{t.role}\x1f{t.content}" for t in turns).encode()).hexdigest()[:40]
    settings = request.settings or ActionSettings()
    session, _created = tutor.start_session(owner, StartSession(
        client_session_id=f"conv-{digest}", tutor_name=settings.tutor_name, topic=settings.topic,
        accent=settings.accent, level=settings.level, gender=settings.gender))
    if session.status == "active":  # new, or an earlier attempt stopped before ending it
        for index, turn in enumerate(turns):
            tutor.add_message(owner, session.session_id, NewMessage(
                role=turn.role, content=turn.content, message_id=f"{digest[:24]}-{index}"))
        session = tutor.end_session(owner, session.session_id)
    return session


def saved_session_with(tutor: Tutor, owner: str, turns: list[ActionTurn]) -> Session | None:
    """One of the owner's newest sessions whose learner messages are exactly those of ``turns``."""
    said = [t.content for t in turns if t.role == "user"]
    for session in tutor.list_sessions(owner, limit=RECENT_SESSIONS_MATCHED, cursor=None).items:
        if session.turn_count != len(said):  # the learner-turn count rules most out without a read
            continue
        if [m.content for m in tutor.history(owner, session.session_id) if m.role == "user"] == said:
            return session
    return None


def analysis_reply(status: AnalysisStatus, shown_id: str) -> Answer:
    if status.status == "failed":
        error = status.error
        code, reason = (error.code, error.reason) if error else ("Unknown", "The analysis failed; try again.")
        if code == "QuotaExceeded":
            raise QuotaExceeded(reason)
        if code in ("ProviderError", "Timeout", "States.Timeout"):
            raise ServiceUnavailable(reason, details=[{"sessionId": shown_id, "reason": code}],
                                     headers={"Retry-After": "5"})
        raise AnalysisFailed(reason, details=[{"sessionId": shown_id, "reason": code}])
    if status.status == "running" or status.report is None:
        return ActionAnalysisReply(success=False, status="running", session_id=shown_id,
                                 poll=f"/sessions/{status.session_id}/analysis"), 202
    return ActionAnalysisReply(success=True, status="completed", session_id=shown_id,
                             analysis=seed_analysis(status.report), report=status.report), 200
