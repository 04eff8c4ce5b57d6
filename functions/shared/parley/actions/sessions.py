"""Actions on sessions and messages: ``start_session``, ``end_session``, ``save_message``,
``get_sessions``, ``get_session_detail`` and ``delete_session`` (the /sessions routes).

``sessionId`` may be the client's own id (the original clients make a UUID and send it to
``start_session``; Parley keeps it as the session's ``clientSessionId``) or Parley's id.
"""

from __future__ import annotations

from parley.actions.context import Answer, Call, Services
from parley.actions.replies import (
    ActionDeleteReply,
    ActionMessageOut,
    ActionMessageReply,
    ActionSessionDetailReply,
    ActionSessionReply,
    ActionSessionsReply,
    ActionStoredAnalysis,
    seed_analysis,
)
from parley.actions.requests import (
    ActionSettings,
    DeleteSessionAction,
    EndSessionAction,
    GetSessionDetailAction,
    GetSessionsAction,
    SaveMessageAction,
    StartSessionAction,
)
from parley.core.errors import NotFound
from parley.tutor.models import NewMessage, Session, StartSession


def start_session(services: Services, owner: str, request: StartSessionAction, _call: Call) -> Answer:
    settings = request.settings or ActionSettings()
    session, created = services.tutor.start_session(owner, StartSession(
        client_session_id=request.session_id, tutor_name=request.tutor_name or settings.tutor_name,
        topic=settings.topic, accent=settings.accent, level=settings.level, gender=settings.gender))
    return ActionSessionReply(session_id=request.session_id or session.session_id, started_at=session.started_at,
                            session=session), 201 if created else 200


def end_session(services: Services, owner: str, request: EndSessionAction, _call: Call) -> Answer:
    tutor = services.tutor
    session = tutor.end_session(owner, tutor.resolve_session_id(owner, request.session_id))
    return ActionSessionReply(session_id=request.session_id, started_at=session.started_at,
                            ended_at=session.ended_at, session=session), 200


def save_message(services: Services, owner: str, request: SaveMessageAction, _call: Call) -> Answer:
    tutor = services.tutor
    session_id = tutor.resolve_session_id(owner, request.session_id)
    new = request.message
    message, created = tutor.add_message(owner, session_id, NewMessage(
        role=new.role, content=new.content, translation=new.translation, turn_number=new.turn_number,
        message_id=new.message_id))
    return ActionMessageReply(message_id=message.message_id, message=message), 201 if created else 200


def get_sessions(services: Services, owner: str, request: GetSessionsAction, _call: Call) -> Answer:
    page = services.tutor.list_sessions(owner, limit=request.limit, cursor=request.last_key)
    return ActionSessionsReply(sessions=page.items, has_more=page.next_cursor is not None,
                             last_key=page.next_cursor), 200


def get_session_detail(services: Services, owner: str, request: GetSessionDetailAction, _call: Call) -> Answer:
    """The session, its messages and (when there is one) its completed analysis."""
    tutor = services.tutor
    session_id = tutor.resolve_session_id(owner, request.session_id)
    detail = tutor.session_detail(owner, session_id)
    analysis = None
    try:
        status = services.analyses().get(owner, session_id)
        if status.report is not None:
            analysis = seed_analysis(status.report, ActionStoredAnalysis)
    except NotFound:
        pass  # not analysed
    messages = [ActionMessageOut(message_id=m.message_id, role=m.role, content=m.content, translation=m.translation,
                               timestamp=m.created_at, turn_number=m.turn_number) for m in detail.messages]
    return ActionSessionDetailReply(session=Session(**detail.model_dump(exclude={"messages"})), messages=messages,
                                  analysis=analysis), 200


def delete_session(services: Services, owner: str, request: DeleteSessionAction, _call: Call) -> Answer:
    tutor = services.tutor
    removed = tutor.delete_session(owner, tutor.resolve_session_id(owner, request.session_id))
    return ActionDeleteReply(deleted_count=removed), 200
