"""Benchmarks run by ``make bench``: every module in this package registers its own with
``@benchmark("name")`` (see ``registry``); ``python -m bench [name ...]`` runs them."""

import sys
from pathlib import Path

# The layer's package, as Lambda puts it on the path (/opt/python), and the repository root.
_ROOT = Path(__file__).resolve().parent.parent
for _path in (str(_ROOT / "functions" / "shared"), str(_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
