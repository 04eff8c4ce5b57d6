"""`make verify`: what moto cannot see, checked before a deploy can find it.

moto enforces no IAM, knows no CloudFormation limits and accepts stages that AWS refuses. These
checks read what `sam build` and SAM's translator produce - the artefacts a deploy would upload -
and hold them to AWS's documented rules (each module says which page it follows):

- ``cfn``: the transformed template's limits (resources, outputs, parameters, size), API Gateway's
  account-wide logging role before any stage logs, ``RetainExceptOnCreate`` on retained resources.
- ``iam``: every IAM statement through a policy linter (parliament: actions exist, resources match
  the action's resource types), and the one allow-list of actions granted on ``"*"``.
- ``asl``: both state machines with their substitutions applied, for ``asl-validator``.
- ``imports``: every handler imported from the build output with its environment from the
  transformed template, for each ``AuthMode`` and ``AiProvider``.

`python -m verify --help` lists the steps; the Makefile runs them in two virtualenvs (SAM's
translator and parliament in ``.venv-lint``, the handlers with the layer's versions in ``.venv``).
Nothing here needs the network or an AWS account.
"""
