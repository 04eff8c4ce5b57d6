"""State transitions a transcription costs, measured by running the workflow on moto.

Step Functions Standard bills per state transition. Three ways to learn that a job has finished:

- **poll only** (the workflow before the event-driven wait: StartJob -> InitPoll): the cost depends
  on how many polls it takes, which depends on how long Transcribe takes (not on how long the audio
  is, directly). We assume Transcribe finishes a batch job in ``15 s + 0.5 x audio length`` (a
  start-up overhead plus faster than real time; measure your own region and adjust ``PROCESSING``),
  derive the number of polls each schedule needs, then run the real state machine on moto with the
  job completing at exactly that poll;
- **event-driven** (the workflow as deployed): the execution waits on a task token; Transcribe's
  "Transcribe Job State Change" event -> the job-events Lambda -> SendTaskSuccess. The count does not
  depend on the processing time at all;
- **event lost** (the safety net): no event arrives; the wait times out after
  ``TranscriptionEventWaitSeconds`` (600 s by default, long after the job finished) and the first
  poll finds the job done. It costs time, not the transcription.

Each row runs the real state machine on moto and counts the states entered in its history.

    .venv/bin/python -m bench.transcription_transitions
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import sys
import time
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


POLL_ONLY, EVENT_DRIVEN, EVENT_LOST = "poll only", "event-driven", "event lost (safety net)"


def _poll_only(definition_of: Any) -> Any:
    """The definition as it was before the event-driven wait: StartJob goes straight to the poll."""
    def poll_only(stack: Any, logical_id: str, substitutions: Any = None) -> str:
        definition = json.loads(definition_of(stack, logical_id, substitutions))
        if logical_id == "TranscriptionStateMachine":
            states = definition["States"]
            states["StartJob"]["Next"] = "InitPoll"
            for name in ("WaitForJobEvent", "EventSaysDone?"):
                del states[name]
        return json.dumps(definition)

    return poll_only


def measure(polls: int, mode: str = POLL_ONLY) -> int:
    """Run the workflow on moto; states entered. ``poll only``: the job completes at poll ``polls``;
    ``event-driven``: Transcribe's event resumes the wait; ``event lost``: the wait times out and
    the first poll finds the job done."""
    from unittest import mock

    import boto3
    from moto import mock_aws

    from local_stack import workflows
    from local_stack.bus import BusRelay
    from local_stack.gateway import RestGateway
    from local_stack.lambdas import FunctionRunner
    from local_stack.resources import provision
    from local_stack.speech import announce_job_state, emulate_speech, finish_job, transcript_document
    from local_stack.template import Stack
    from parley.core import clients
    from parley.data import keys
    from parley.speech.transcription.objects import job_name

    stack = Stack(parameters={"Stage": "bench", "AuthMode": "device"})
    runner = FunctionRunner(stack)
    seen = {"n": 0}

    def transcribe(job: Any) -> Any:
        seen["n"] += 1  # moto: QUEUED at poll 1, IN_PROGRESS at poll 2; this runs from poll 3 on
        return transcript_document("Hello there.") if mode != POLL_ONLY or seen["n"] >= polls - 2 else None

    clients.reset()
    subs = {"PollIntervalSeconds": "0", "PollMaxIntervalSeconds": "0", "MaxPolls": "1000",
            "EventWaitSeconds": "1" if mode == EVENT_LOST else "60"}
    definitions = _poll_only(workflows.definition_of) if mode == POLL_ONLY else workflows.definition_of
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), \
            mock.patch.object(workflows, "definition_of", definitions):  # type: ignore[arg-type]
        names = provision(stack)
        relay = BusRelay(stack, runner).install()
        with workflows.Workflows(stack, runner, substitutions=subs).installed() as wf, \
                emulate_speech(transcribe, speak=False):
            gateway = RestGateway(stack, runner)
            audio = base64.b64encode(b"\x1a\x45\xdf\xa3" + bytes(64)).decode()
            headers = {"Content-Type": "application/json", "X-Device-Id": "bench-device-01"}
            response = gateway.handle("POST", "/transcriptions", headers=headers, body=json.dumps({"audio": audio}))
            assert response.status == 202, response.body
            arn = wf.executions("TranscriptionStateMachine")[0]
            if mode != POLL_ONLY:
                job = job_name("bench", response.json()["transcriptionId"])
                table = boto3.resource("dynamodb").Table(names["Table"])
                deadline = time.monotonic() + 30
                while not table.get_item(Key={"PK": keys.transcribe_job_pk(job), "SK": keys.JOB_WAIT_SK}).get("Item"):
                    assert time.monotonic() < deadline, wf.states_entered(arn)
                    time.sleep(0.005)  # until the execution has stored its task token
                assert finish_job(job) == "COMPLETED"  # Transcribe runs the job to its end
                if mode == EVENT_DRIVEN:
                    announce_job_state(job, "COMPLETED")
                    relay.pump()
            result = wf.wait(arn, timeout=120)
            assert result.status == "SUCCEEDED", result
            entered = wf.states_entered(arn)
            expected_polls = {POLL_ONLY: polls, EVENT_DRIVEN: 0, EVENT_LOST: 1}[mode]
            assert entered.count("GetJob") == expected_polls, (entered, mode)
            return len(entered)


@benchmark("transcription-transitions", "transcription state transitions (5/30/120 s audio): poll only vs event-driven")
def transitions_bench(_runs: int) -> None:
    main()


def rows() -> list[tuple[int, float, str, int, int]]:
    """(audio s, assumed processing s, schedule, polls, transitions measured on moto) per row."""
    found = []
    for audio in AUDIO_SECONDS:
        processing = PROCESSING(audio)
        for label, backoff in (("2 s fixed", False), ("2 s doubling to 16 s (default)", True)):
            polls = polls_needed(processing, 2, 16, backoff)
            found.append((audio, processing, f"{POLL_ONLY}, {label}", polls, measure(polls)))
        found.append((audio, processing, EVENT_DRIVEN + " (default)", 0, measure(0, EVENT_DRIVEN)))
        found.append((audio, processing, EVENT_LOST, 1, measure(1, EVENT_LOST)))
    return found


def main() -> None:
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs IsPresent on an absent path as an error
    print("| audio | assumed processing | how it learns the job is done | polls | transitions (measured on moto) |")
    print("| ---: | ---: | --- | ---: | ---: |")
    for audio, processing, label, polls, transitions in rows():
        print(f"| {audio} s | {processing:g} s | {label} | {polls} | {transitions} |")


if __name__ == "__main__":
    main()
