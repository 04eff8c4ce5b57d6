"""The offline engine: deterministic answers, no network, labelled ``offline`` in every answer.

The local stack uses it unless real credentials are configured, and tests use it wherever the
model's wording does not matter. Features that need a structured answer (analysis, proofreading)
register a responder for their ``purpose`` that builds a valid answer from the request itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from parley.ai.types import AiAnswer, AiRequest, Engine, TokenUsage

Responder = Callable[[AiRequest], str]
_RESPONDERS: dict[str, Responder] = {}
MODEL = "parley-offline-1"


def register(purpose: str) -> Callable[[Responder], Responder]:
    def decorate(fn: Responder) -> Responder:
        _RESPONDERS[purpose] = fn
        return fn

    return decorate


def estimate_tokens(text: str) -> int:
    """About four characters a token, the usual rule of thumb for English."""
    return max(1, (len(text) + 3) // 4)


# -- the tutor's replies ----------------------------------------------------------------------------
# The tutor's system prompt (parley.tutor.persona) names the level and the topic; the offline tutor
# reads them there (it imports no domain) and answers like a tutor: a short reaction, a recast of one
# slip in the learner's last message when Harper finds one, and a question on the topic at the level,
# a different one each turn. It never turns the learner's own words into a question.
QUESTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "daily": {
        "beginner": ("What do you do in the morning?", "What food do you like?", "Who do you live with?",
                     "What do you do on the weekend?", "What is the weather like today?",
                     "What do you like to buy when you go shopping?"),
        "intermediate": ("What does a typical weekday look like for you?",
                         "What do you usually cook when you have friends over?",
                         "How do you like to spend a free afternoon?",
                         "What are your plans for this weekend?",
                         "Which hobby would you like to have more time for, and why?",
                         "How has your daily routine changed in the last few years?"),
        "advanced": ("Which small habit has made the biggest difference to your everyday life?",
                     "How do you strike a balance between work, family and time for yourself?",
                     "What do you think makes a neighbourhood a good place to live?",
                     "Which tradition in your family would you most like to keep alive, and why?",
                     "How do you think technology has changed the way friends spend time together?",
                     "If you could redesign your weekly routine from scratch, what would you change?"),
    },
    "travel": {
        "beginner": ("Where do you want to go on holiday?", "Do you like to travel by train or by plane?",
                     "What do you pack in your bag?", "What city do you like best?",
                     "What do you eat when you travel?", "Who do you travel with?"),
        "intermediate": ("What was the best trip you have ever taken?",
                         "How do you usually choose a hotel when you travel?",
                         "What would you do if your flight was cancelled?",
                         "Which place would you recommend to a friend visiting your country?",
                         "Do you prefer planning every detail of a trip or deciding as you go?",
                         "What is the most useful thing you have learned while travelling?"),
        "advanced": ("How do you think travelling changes the way people see their own country?",
                     "What makes a trip memorable for you: the places, the people or the unexpected?",
                     "Should tourists adapt their habits to local customs, and how far?",
                     "How has the way people travel changed since you were a child?",
                     "Which destination do you think is overrated, and which is underrated?",
                     "What is the most difficult situation you have handled abroad?"),
    },
    "business": {
        "beginner": ("What is your job?", "What time do you start work?", "Do you work in a team?",
                     "How many meetings do you have each week?", "What do you write emails about?",
                     "What do you like about your work?"),
        "intermediate": ("How do you usually prepare for an important meeting?",
                         "What is the most challenging part of your job at the moment?",
                         "How do you handle a disagreement with a colleague?",
                         "What makes a presentation interesting for you?",
                         "How do you keep track of your tasks during a busy week?",
                         "What would you like to improve in the way your team works?"),
        "advanced": ("How would you persuade a sceptical client to try a new product?",
                     "What do you think makes a negotiation successful for both sides?",
                     "How should a manager give feedback that people actually act on?",
                     "Which skills do you think will matter most in your field in ten years?",
                     "How do you decide when to follow a process and when to break it?",
                     "What is the best business decision you have seen someone make, and why?"),
    },
    "interview": {
        "beginner": ("Can you tell me about yourself?", "What was your last job?", "What are you good at?",
                     "Why do you want this job?", "Do you like working in a team?",
                     "When can you start?"),
        "intermediate": ("Can you tell me about a project you are proud of?",
                         "What would your colleagues say is your greatest strength?",
                         "Tell me about a time when you solved a difficult problem at work.",
                         "Why are you interested in this position?",
                         "How do you deal with tight deadlines?",
                         "Where do you see yourself in five years?"),
        "advanced": ("Tell me about a time when you had to lead without formal authority.",
                     "Describe a decision you made with incomplete information, and what you learned.",
                     "How would you approach your first ninety days in this role?",
                     "Tell me about a time you disagreed with your manager. How did you handle it?",
                     "What is a weakness you have worked on, and what changed as a result?",
                     "Why should we choose you over the other strong candidates?"),
    },
}
REACTIONS = ("That sounds great.", "Thanks for telling me.", "I see, that's interesting.", "Oh, nice!",
             "That makes sense.", "Good to hear.")
QUESTION_REACTIONS = ("Good question! I enjoy talking about that too.", "That's a good question.")
_TOPIC_MARKERS = {"business": "BUSINESS", "daily": "DAILY LIFE", "travel": "TRAVEL", "interview": "JOB INTERVIEWS"}
_LEVEL_MARKERS = {"beginner": "BEGINNER", "intermediate": "INTERMEDIATE", "advanced": "ADVANCED"}
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def _setting(system: str, markers: dict[str, str], default: str) -> str:
    return next((name for name, marker in markers.items() if marker in system), default)


def _recast(message: str) -> str | None:
    """The first sentence of ``message`` with the slips Harper finds in it mended (or None)."""
    from parley.ai import grammar  # the offline engine's own helper; absent without harper-py

    if not grammar.available():
        return None
    for sentence in _SENTENCE.finditer(message):
        text = sentence.group(0).strip()
        fixes = [i for i in grammar.check(text) if i.learner_error and i.replacement is not None
                 and i.category == "grammar"]  # spoken aloud: spelling is not heard
        if not fixes or len(text.split()) > 14:
            continue
        mended, cursor = [], 0
        for issue in fixes:
            if issue.start < cursor:
                continue
            mended += [text[cursor:issue.start], issue.replacement or ""]
            cursor = issue.end
        mended.append(text[cursor:])
        result = re.sub(r"\s+", " ", "".join(mended)).strip()
        if result and result != text:
            return result[0].upper() + result[1:]
    return None


def tutor_reply(system: str, learner_turns: list[str]) -> str:
    """A tutor's reply: deterministic, on the topic and at the level the system prompt names."""
    topic = _setting(system, _TOPIC_MARKERS, "daily")
    level = _setting(system, _LEVEL_MARKERS, "intermediate")
    questions = QUESTIONS[topic][level]
    question = questions[len(learner_turns) % len(questions)]
    last = learner_turns[-1].strip() if learner_turns else ""
    if not last:
        return f"Hi! Let's practise. {question}"
    reactions = QUESTION_REACTIONS if last.endswith("?") else REACTIONS
    reaction = reactions[sum(last.encode()) % len(reactions)]  # the same message, the same reaction
    recast = _recast(last) if level != "advanced" else None
    middle = f" We'd say: \"{recast}\"" if recast else ""
    return f"{reaction}{middle} {question}"


@register("chat")
def _chat(request: AiRequest) -> str:
    system = "".join(request.system)
    if "Topic:" not in system or "Level:" not in system:  # not the tutor: e.g. the proofreader's chat mode
        return ("The offline engine answers no questions: it proofreads. Send the text in proofreading mode, "
                "or configure Anthropic or Bedrock for chat.")
    learner = [t.text for t in request.messages if t.role == "user"]
    return tutor_reply(system, learner)


class OfflineProvider:
    engine: Engine = "offline"

    def __init__(self, model: str = MODEL) -> None:
        self.model = model

    def complete(self, request: AiRequest) -> AiAnswer:
        responder = _RESPONDERS.get(request.purpose, _RESPONDERS["chat"])
        text = responder(request)
        prompt = "".join(request.system) + "".join(t.text for t in request.messages)
        usage = TokenUsage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(text))
        return AiAnswer(text=text, engine="offline", model=self.model, usage=usage)

    def stream(self, request: AiRequest) -> Iterator[str | AiAnswer]:
        answer = self.complete(request)
        yield from re.findall(r"\S+\s*", answer.text)
        yield answer
