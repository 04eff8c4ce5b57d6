"""Chat input tokens as a conversation grows: the history budget should flatten the curve.

Builds the exact request the chat turn sends (system prompt + the history window + the new
message) for turns 5, 20 and 60 of one simulated conversation with realistic turn lengths, and
counts input tokens with the same estimator the budget uses. The baseline is turn 5 of the same run.
"""

from __future__ import annotations

from bench.registry import benchmark
from parley.ai.offline import estimate_tokens
from parley.ai.types import AiRequest, Turn
from parley.tutor.chat import Chat
from parley.tutor.persona import TutorPersona

LEARNER = "Last weekend I went to the market with my sister and we bought some vegetables for the dinner."
TUTOR = "That sounds lovely! What did you cook with the vegetables, and did your sister help you?"
TURNS = (5, 20, 60)


def _conversation(turns: int) -> list[Turn]:
    history: list[Turn] = []
    for n in range(turns - 1):
        history += [Turn("user", f"{LEARNER} ({n})"), Turn("assistant", f"{TUTOR} ({n})")]
    return history


def input_tokens(request: AiRequest) -> int:
    return sum(estimate_tokens(block) for block in request.system) + sum(
        estimate_tokens(turn.text) for turn in request.messages)


def template_budget() -> int:
    """The chat function's history budget as the template configures it (ChatHistoryTokens)."""
    from local_stack.template import Stack

    env = Stack(parameters={"Stage": "bench", "AuthMode": "device"}).functions()["ChatFunction"].environment
    return int(env["CHAT_HISTORY_TOKENS"])


def measure(history_tokens: int | None = None) -> dict[int, tuple[int, int, bool]]:
    """{turn: (input tokens, history messages sent, truncated)} for the turns above."""
    history_tokens = history_tokens or template_budget()
    chat = Chat.__new__(Chat)  # only build_request is used: no table, provider or bus needed
    chat.history_tokens, chat.max_tokens, chat.temperature = history_tokens, 300, 0.7
    persona = TutorPersona(tutor_name="Emma", accent="UK", level="intermediate", topic="daily")
    found = {}
    for turn in TURNS:
        request, truncated = chat.build_request(persona, _conversation(turn), f"{LEARNER} (turn {turn})")
        found[turn] = (input_tokens(request), len(request.messages) - 1, truncated)
    return found


@benchmark("chat-tokens", "chat input tokens at turn 5, 20 and 60 of one conversation (vs turn 5)")
def chat_tokens(runs: int) -> None:
    found = measure()
    base = found[TURNS[0]][0]
    print(f"  history budget {template_budget()} tokens (ChatHistoryTokens)")
    print(f"  {'turn':>5} {'input tokens':>13} {'vs turn 5':>10} {'history msgs':>13}  truncated")
    for turn, (tokens, sent, truncated) in found.items():
        print(f"  {turn:>5} {tokens:>13} {tokens / base:>9.2f}x {sent:>13}  {'yes' if truncated else 'no'}")
    print(f"  target: turn 60 <= 1.5x turn 5 -> {'met' if found[60][0] <= 1.5 * base else 'MISSED'}")
