"""At INFO, the logs carry no learner text and no secret — only ids, codes and counts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.conftest import ApiClient

LEARNER_TEXT = "my-very-private-sentence about Grandma Zelda"
SECRET_TOKEN = "Bearer eyJ-not-a-real-token-but-secret-looking"


class _Capture(logging.Handler):
    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []
        if formatter:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[_Capture]:
    from parley.core.observability import logger

    target = logging.getLogger(logger.name)
    formatter = logger.registered_formatter if hasattr(logger, "registered_formatter") else None
    capture = _Capture(formatter)
    old_level = target.level
    target.addHandler(capture)
    target.setLevel(logging.INFO)
    yield capture
    target.removeHandler(capture)
    target.setLevel(old_level)


def test_no_learner_text_or_token_reaches_the_logs(api: ApiClient, logs: _Capture) -> None:
    headers = {"Authorization": SECRET_TOKEN}
    api.put("/settings", {"tutorName": "Zelda"}, headers=headers)
    sid = api.post("/sessions", {}, headers=headers).json()["sessionId"]
    api.post(f"/sessions/{sid}/messages", {"role": "user", "content": LEARNER_TEXT}, headers=headers)
    api.post("/chat", {"sessionId": sid, "message": LEARNER_TEXT}, headers=headers)
    api.post(f"/sessions/{sid}/messages", {"role": "user", "content": ""}, headers=headers)  # a 422 path
    api.delete(f"/sessions/{sid}", headers=headers)
    assert logs.lines, "expected some INFO logs to inspect"
    text = "\n".join(logs.lines)
    assert "Grandma Zelda" not in text
    assert "secret-looking" not in text
