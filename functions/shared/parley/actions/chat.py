"""The ``chat`` action: the tutor's turn (``POST /chat``), with the conversation sent explicitly."""

from __future__ import annotations

from parley.actions.context import Answer, Call, Services
from parley.actions.replies import ActionChatReply
from parley.actions.requests import ChatAction
from parley.core.errors import UnprocessableEntity
from parley.tutor.chat import ChatRequest

# The original chat opened a call with this when the client sent no messages: the tutor greets first.
OPENING_MESSAGE = "Hello, let's start our English practice session."


def chat(services: Services, owner: str, request: ChatAction, call: Call) -> Answer:
    turns = list(request.messages)
    if turns and turns[-1].role != "user":
        raise UnprocessableEntity("The last message must be the learner's (role user): it is what the tutor "
                                  "answers.", details=[{"field": f"body.messages.{len(turns) - 1}.role"}])
    message = turns.pop().content if turns else OPENING_MESSAGE
    settings = request.settings.model_dump(include={"accent", "level", "topic", "tutor_name"}, exclude_none=True) \
        if request.settings else None
    chat_request = ChatRequest(message=message, messages=[{"role": t.role, "content": t.content} for t in turns],
                               settings=settings)
    reply = services.chat().turn(owner, chat_request, deadline=call.deadline)
    translation = reply.translation.text if reply.translation is not None else None
    return ActionChatReply(message=reply.reply, translation=translation, engine=reply.engine, model=reply.model,
                         fallback_from=reply.fallback_from, usage=reply.usage,
                         history_truncated=reply.history_truncated), 200
