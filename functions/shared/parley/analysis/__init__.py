"""The session analysis: measured metrics (``metrics``), the model's structured CAFP judgement with
every quote checked (``judge``, ``report``), and the session's analysis item, its start and its
workflow tasks (``service``). See statemachines/analysis.asl.json for the workflow."""
