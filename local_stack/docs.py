"""Generated text, kept true by tests: the docs' parameter table and the template's alarms.

    python -m local_stack.docs --write      # make docs: refresh docs/parameters.md and template.yaml

- docs/parameters.md: each parameter's row comes from its own ``Description`` in template.yaml.
- template.yaml: the seed's monitoring table per function and per state machine — errors over 1 %
  of invocations for every function, and duration over 30 s for every function whose timeout
  allows it (a function with a shorter timeout cannot run that long: it times out, which counts
  as an error); executions failed or timed out for every state machine. SAM cannot loop
  (Fn::ForEach breaks `sam build`), so the alarms are written out here, between markers.
"""

from __future__ import annotations

import argparse
import re

from .template import ROOT, load_template

PARAMETERS_PAGE = ROOT / "docs" / "parameters.md"
TEMPLATE_FILE = ROOT / "template.yaml"
START, END = "<!-- section:parameters -->", "<!-- /section:parameters -->"
ALARMS_START = ("  # ---- generated alarms: begin (make docs; from each function's and state machine's own "
                "settings) ----")
ALARMS_END = "  # ---- generated alarms: end ----"
ACTIONS = "      AlarmActions: !If [HasAlarmTopic, [!Ref AlarmTopicArn], !Ref AWS::NoValue]"


def parameters_table() -> str:
    template = load_template()
    rows = ["| Parameter | Default | Allowed | Meaning |", "| --- | --- | --- | --- |"]
    for name, spec in template["Parameters"].items():
        default = spec.get("Default", "")
        default_text = f"`{default}`" if str(default) != "" else "*(empty)*"
        allowed = ", ".join(f"`{v}`" for v in spec.get("AllowedValues", []))
        if not allowed and ("MinValue" in spec or "MaxValue" in spec):
            allowed = f"{spec.get('MinValue', '')}–{spec.get('MaxValue', '')}"
        meaning = re.sub(r"\s+", " ", str(spec.get("Description", ""))).strip().replace("|", "\\|")
        rows.append(f"| `{name}` | {default_text} | {allowed} | {meaning} |")
    return "\n".join(rows)


def section() -> str:
    return (f"{START}\nSet with `sam deploy --parameter-overrides Name=Value ...` or in `samconfig.toml`. "
            f"Generated from template.yaml by `make docs`.\n\n{parameters_table()}\n{END}")


def refreshed_parameters_page() -> str:
    text = PARAMETERS_PAGE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _m: section(), text, count=1)


def _lambda_metric(metric_id: str, name: str, function_name: str) -> str:
    return f"""        - Id: {metric_id}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/Lambda
              MetricName: {name}
              Dimensions:
                - Name: FunctionName
                  Value: !Sub {function_name}
            Period: 300
            Stat: Sum"""


def _function_alarms(logical_id: str, function_name: str, timeout: int) -> str:
    short = function_name.removeprefix("parley-${Stage}-")
    blocks = [f"""  {logical_id}ErrorRateAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub {function_name}-error-rate
      AlarmDescription: {short} failed more than 1 % of its invocations over 5 minutes (seed - check logs).
      Metrics:
{_lambda_metric("errors", "Errors", function_name)}
{_lambda_metric("invocations", "Invocations", function_name)}
        - Id: rate
          Label: Error rate (%)
          Expression: IF(invocations > 0, 100 * errors / invocations, 0)
          ReturnData: true
      EvaluationPeriods: 1
      Threshold: 1
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
{ACTIONS}
"""]
    if timeout > 30:
        blocks.append(f"""  {logical_id}DurationAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub {function_name}-duration
      AlarmDescription: {short} ran longer than 30 s (seed - optimise the code).
      Namespace: AWS/Lambda
      MetricName: Duration
      Dimensions:
        - Name: FunctionName
          Value: !Sub {function_name}
      Statistic: Maximum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 30000
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
{ACTIONS}
""")
    return "\n".join(blocks)


def _state_machine_alarm(logical_id: str) -> str:
    def metric(metric_id: str, name: str) -> str:
        return f"""        - Id: {metric_id}
          ReturnData: false
          MetricStat:
            Metric:
              Namespace: AWS/States
              MetricName: {name}
              Dimensions:
                - Name: StateMachineArn
                  Value: !Ref {logical_id}
            Period: 300
            Stat: Sum"""

    return f"""  {logical_id}FailuresAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmName: !Sub ${{{logical_id}.Name}}-failures
      AlarmDescription: An execution of {logical_id} failed or timed out.
      Metrics:
{metric("failed", "ExecutionsFailed")}
{metric("timedout", "ExecutionsTimedOut")}
        - Id: problems
          Label: Failed or timed-out executions
          Expression: failed + timedout
          ReturnData: true
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
{ACTIONS}
"""


def alarms_section() -> str:
    template = load_template()
    globals_timeout = int(template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    blocks = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            name = props["FunctionName"]["Fn::Sub"]
            blocks.append(_function_alarms(logical_id, name, int(props.get("Timeout", globals_timeout))))
        elif resource.get("Type") == "AWS::Serverless::StateMachine":
            blocks.append(_state_machine_alarm(logical_id))
    return "\n".join([ALARMS_START, *blocks, ALARMS_END])


def refreshed_template() -> str:
    text = TEMPLATE_FILE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(ALARMS_START) + r".*?" + re.escape(ALARMS_END), re.S)
    return pattern.sub(lambda _m: alarms_section(), text, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite docs/parameters.md and template.yaml")
    args = parser.parse_args()
    if args.write:
        TEMPLATE_FILE.write_text(refreshed_template(), encoding="utf-8")
        PARAMETERS_PAGE.write_text(refreshed_parameters_page(), encoding="utf-8")
    else:
        print(section())


if __name__ == "__main__":
    main()
