"""MkDocs hooks (mkdocs.yml's ``hooks:``): pages generated while the site is built.

- ``api/reference.md``: the API reference, rendered from openapi.json (``docsite.api_reference``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mkdocs.structure.files import File, Files

from docsite.api_reference import render_file

REFERENCE = "api/reference.md"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, REFERENCE, content=render_file()))
    return files
