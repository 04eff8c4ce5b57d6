"""State transitions a transcription costs, measured by running the workflow on moto.

Step Functions Standard bills per state transition. A job's cost depends on how many polls it
takes, which depends on how long Transcribe takes (not on how long the audio is, directly). We
assume Transcribe finishes a batch job in ``15 s + 0.5 x audio length`` (a start-up overhead plus
faster than real time; measure your own region and adjust ``PROCESSING``), derive the number of
polls each schedule needs, then run the real state machine on moto with the job completing at
exactly that poll and count the states entered in its history.

    .venv/bin/python -m bench.transcription_transitions
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from bench.registry import benchmark

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT / "functions" / "shared"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR"}

AUDIO_SECONDS = (5, 30, 120)


def PROCESSING(audio_seconds: float) -> float:  # noqa: N802 - the assumption, named loudly
    return 15 + 0.5 * audio_seconds


def polls_needed(processing: float, first: float, maximum: float, backoff: bool) -> int:
    waited, wait = 0.0, first
    for poll in itertools.count(1):
        waited += wait
        if waited >= processing:
            return poll
        if backoff and wait < maximum:
            wait = wait * 2


def measure(polls: int) -> int:
    """Run the workflow on moto with the job completing at poll ``polls``; states entered."""
    from moto import mock_aws

    from local_stack.gateway import RestGateway
    from local_stack.lambdas import FunctionRunner
    from local_stack.resources import provision
    from local_stack.speech import emulate_speech, transcript_document
    from local_stack.template import Stack
    from local_stack.workflows import Workflows
    from parley import clients

    stack = Stack(parameters={"Stage": "bench", "AuthMode": "device"})
    runner = FunctionRunner(stack)
    seen = {"n": 0}

    def transcribe(job: Any) -> Any:
        seen["n"] += 1  # moto: QUEUED at poll 1, IN_PROGRESS at poll 2; this runs from poll 3 on
        return transcript_document("Hello there.") if seen["n"] >= polls - 2 else None

    clients.reset()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        provision(stack)
        subs = {"PollIntervalSeconds": "0", "PollMaxIntervalSeconds": "0", "MaxPolls": "1000"}
        with Workflows(stack, runner, substitutions=subs).installed() as wf, emulate_speech(transcribe, speak=False):
            gateway = RestGateway(stack, runner)
            audio = base64.b64encode(b"\x1a\x45\xdf\xa3" + bytes(64)).decode()
            headers = {"Content-Type": "application/json", "X-Device-Id": "bench-device-01"}
            response = gateway.handle("POST", "/transcriptions", headers=headers, body=json.dumps({"audio": audio}))
            assert response.status == 202, response.body
            arn = wf.executions("TranscriptionStateMachine")[0]
            result = wf.wait(arn, timeout=120)
            assert result.status == "SUCCEEDED", result
            entered = wf.states_entered(arn)
            assert entered.count("GetJob") == polls, (entered.count("GetJob"), polls)
            return len(entered)


@benchmark("transcription-transitions", "state transitions per transcription (5/30/120 s audio), fixed vs backoff")
def transitions_bench(_runs: int) -> None:
    main()


def main() -> None:
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs IsPresent on an absent path as an error
    rows = []
    for audio in AUDIO_SECONDS:
        processing = PROCESSING(audio)
        for label, backoff in (("2 s fixed", False), ("2 s doubling to 16 s (default)", True)):
            polls = polls_needed(processing, 2, 16, backoff)
            rows.append((audio, processing, label, polls, measure(polls)))
    print("| audio | assumed processing | poll schedule | polls | transitions (measured on moto) |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for audio, processing, label, polls, transitions in rows:
        print(f"| {audio} s | {processing:g} s | {label} | {polls} | {transitions} |")


if __name__ == "__main__":
    main()
