"""MkDocs hooks (mkdocs.yml's ``hooks:``): pages generated while the site is built, and assets served by it.

- ``api/reference.md``: the API reference, rendered from openapi.json (``docsite.api_reference``).
- Mermaid, which draws the workflows' state machines, is served by the site itself: the theme would
  fetch it from a CDN. ``make docs`` and ``make test`` put the pinned copy in ``docsite/vendor/``
  (the Makefile's ``MERMAID_VERSION``, checked against its hash); a page with a diagram loads it
  before the theme's script, which then uses it instead of fetching its own.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from docsite.api_reference import render_file

REFERENCE = "api/reference.md"
VENDOR = Path(__file__).resolve().parent / "vendor"
MERMAID = "assets/javascripts/mermaid.min.js"
THEME_BUNDLE = re.compile(r'<script src="[^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js">')


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, REFERENCE, content=render_file()))
    copies = sorted(VENDOR.glob("mermaid-*.min.js"))
    if not copies:
        raise PluginError("docsite/vendor/ has no copy of Mermaid: `make docs` (or `make test`) fetches the pinned one")
    files.append(File.generated(config, MERMAID, abs_src_path=str(copies[-1])))
    return files


def on_post_page(output: str, page: Page, config: Any) -> str:
    if 'class="mermaid"' not in output:
        return output
    script = f'<script src="{get_relative_url(MERMAID, page.url or ".")}"></script>'
    output, count = THEME_BUNDLE.subn(lambda bundle: script + bundle.group(0), output, count=1)
    if count != 1:
        raise PluginError(f"{page.file.src_uri}: no theme script to load Mermaid before")
    return output
