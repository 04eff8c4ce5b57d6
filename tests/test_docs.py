"""The documentation cannot drift: the site builds with no broken link, and every example runs.

- The MkDocs site builds in strict mode (a broken link or anchor, a page missing from the nav, fails).
- Every request/response example and every curl example in docs/ runs against one local stack
  (``python -m local_stack``, what ``make run`` starts) and must answer what the page shows.
- The banner in docs/getting-started.md is the one the local stack prints.
- The API reference covers every operation and schema of openapi.json; ``/docs`` serves it offline.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from docsite import examples
from docsite.api_reference import anchor, operation_anchor, render_file
from local_stack.child import ChildStack, child_stack

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES_WITH_EXAMPLES = [page.path for page in examples.pages() if page.examples]
ABBREVIATIONS = ("CAFP", "MTLD", "CEFR", "ULID", "GSI1", "DLQ", "EMF", "PITR", "OAC", "PKCE", "SigV4", "WER",
                 "TTS", "STT", "TTL", "JWT", "JWKS", "ASL", "SAM", "WAF", "CORS", "BCP 47", "ARN", "EOL", "HMAC",
                 "HSTS", "IAM", "IME", "NFC", "PCM", "PK, SK", "SNS", "SQS", "SRP", "SSML")
# Capitals in prose that need no glossary entry: what every reader of an API manual knows, file formats,
# the tutor's accents and CEFR levels, HTTP methods, and words in capitals (statuses, log levels, key parts).
COMMON_CAPITALS = frozenset({
    "AI", "API", "AWS", "CI", "CLI", "CPU", "GB", "HTTP", "HTTPS", "IP", "ISO", "JSON", "KB", "MB", "REST",
    "RFC", "S3", "SDK", "SHA", "SHA256", "TLS", "UI", "URI", "URL", "UTC", "UTF", "UUID", "XML", "YAML",
    "AAC", "CRC", "CRC32", "ES2022", "FLAC", "III", "LAME", "M4A", "MP3", "MP4", "MPEG", "S256", "USD", "WAV",
    "US", "UK", "AU", "IN", "A1", "A2", "B1", "B2", "C1", "C2", "BCP", "GSI1PK", "GSI1SK",
    "GET", "POST", "PUT", "PATCH", "DELETE", "COMPLETED", "FAILED", "ERROR", "INFO", "WARNING", "DEBUG", "NOT",
    "ONE", "REQUEST", "SESSION", "TRANSCRIPT", "ALARM", "QUOTA", "THROTTLED",
})


def _page_id(path: Path) -> str:
    return path.relative_to(DOCS).as_posix()


# -- the site ----------------------------------------------------------------------------------------
def test_the_site_builds_with_no_broken_link_or_anchor(tmp_path: Path) -> None:
    """mkdocs.yml is strict and validates links, anchors and the nav: any warning fails the build."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],  # noqa: S603
                            cwd=ROOT, capture_output=True, text=True, check=False,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    reference = (tmp_path / "api" / "reference" / "index.html").read_text(encoding="utf-8")
    assert 'id="post-chat"' in reference and 'id="schema-session"' in reference
    assert "fonts.googleapis.com" not in (tmp_path / "index.html").read_text(encoding="utf-8")
    # The state machines are drawn by the site's own Mermaid, loaded before the theme's script (which would
    # otherwise fetch one from a CDN), and only on pages with a diagram.
    workflows = (tmp_path / "workflows" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<script src="\.\./assets/javascripts/mermaid\.min\.js"></script><script src="[^"]*/bundle\.',
                     workflows)
    assert (tmp_path / "assets" / "javascripts" / "mermaid.min.js").stat().st_size > 1_000_000
    assert "mermaid.min.js" not in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_the_readmes_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [target for target in targets if not re.match(r"[a-z]+:", target)]
    assert local, "the README links to the docs"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, missing


def test_the_readmes_make_run_lines_are_the_ones_getting_started_shows() -> None:
    """The README shows the first lines of what make run prints; getting-started.md's copy is checked against the
    local stack's real banner (test_getting_started_shows_what_make_run_prints)."""
    readme = next(block.text for block in examples.blocks((ROOT / "README.md").read_text(encoding="utf-8"))
                  if block.lang == "console").splitlines()
    page = next(block.text for block in examples.blocks((DOCS / "getting-started.md").read_text(encoding="utf-8"))
                if block.lang == "console").splitlines()
    shown = [line for line in readme if line.strip() != "…"]
    assert len(shown) >= 3 and all(line in page for line in shown), [line for line in shown if line not in page]


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_users_read_no_project_jargon() -> None:
    """No "seed 000" or "issue 8": a user of Parley has no reason to know the project's own history.

    docs/parameters.md included: template.yaml's parameter descriptions are written for users too."""
    offenders = []
    for path in sorted(DOCS.rglob("*.md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bseeds?\b(?!Actions)|\bissue[- ]\d", line, re.I):
                offenders.append(f"{_page_id(path)}:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)


def test_every_abbreviation_is_defined_once_in_the_glossary() -> None:
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    headings = [re.sub(r"\s*\{.*\}$", "", heading) for heading in re.findall(r"^## (.+)$", glossary, re.M)]
    for abbreviation in ABBREVIATIONS:
        assert sum(heading.split(" —")[0].strip() == abbreviation for heading in headings) == 1, abbreviation


def _error_codes() -> set[str]:
    """The ``code`` of every error class in the parley package (the error body's ``error.code``), declared as
    ``class NotFound(ParleyError, status=404, code="NOT_FOUND")`` or ``code = "..."``."""
    return {code for path in (ROOT / "functions" / "shared" / "parley").rglob("*.py")
            for code in re.findall(r'\bcode(?:: str)? ?= ?"([A-Z_]{3,})"', path.read_text(encoding="utf-8"))}


def test_every_abbreviation_in_the_prose_has_its_glossary_entry() -> None:
    """An abbreviation a page adds (outside code) needs its entry in the glossary, or it is one everybody knows."""
    glossary = (DOCS / "glossary.md").read_text(encoding="utf-8")
    defined = {part for heading in re.findall(r"^## (.+?)(?: —| \{)", glossary, re.M) for part in heading.split(", ")}
    codes = _error_codes()  # error codes are names, not abbreviations
    undefined: dict[str, str] = {}
    for path in sorted(DOCS.rglob("*.md")):
        prose = re.sub(r"(?ms)^\s*```.*?^\s*```", "", path.read_text(encoding="utf-8"))
        prose = re.sub(r"`[^`\n]*`|\]\([^)]*\)|\{[^}\n]*\}", "", prose)
        for word in re.findall(r"\b[A-Z][A-Z0-9]+\b", prose):
            if word not in defined and word not in COMMON_CAPITALS and word not in codes:
                undefined.setdefault(word, _page_id(path))
    assert not undefined, f"define these in docs/glossary.md: {undefined}"


def test_the_workflows_page_draws_every_state_machine_as_it_is() -> None:
    """Each statemachines/*.asl.json is drawn on docs/workflows.md: the same states and the same transitions."""
    diagrams = [block.text for block in examples.blocks((DOCS / "workflows.md").read_text(encoding="utf-8"))
                if block.lang == "mermaid"]
    for path in sorted((ROOT / "statemachines").glob("*.asl.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        drawn = next((text for text in diagrams if f"[*] --> {definition['StartAt']}:" in text), None)
        assert drawn is not None, f"{path.name} is not drawn"
        transitions = {(name, target) for name, state in definition["States"].items()
                       for target in [state.get("Next"), state.get("Default"),
                                      *(choice.get("Next") for choice in state.get("Choices", [])),
                                      *(catch["Next"] for catch in state.get("Catch", []))] if target}
        arrows = set(re.findall(r"(?m)^\s*([\w?]+)\s*-->\s*([\w?]+)", drawn))
        assert arrows == transitions, (path.name, sorted(transitions - arrows), sorted(arrows - transitions))
        ends = set(re.findall(r"(?m)^\s*([\w?]+) --> \[\*\]", drawn))
        states = {name for pair in arrows for name in pair} | ends
        assert states == set(definition["States"]), (path.name, sorted(set(definition["States"]) ^ states))


def test_every_error_code_a_client_can_get_is_documented() -> None:
    """Each error class's code in the parley package appears in docs/, bar the two no client sees."""
    never_answered = {"ANALYSIS_SUPERSEDED": "ends a workflow run quietly",
                      "MALFORMED_USAGE_EVENT": "the usage recorder's, sends the event to the DLQ"}
    docs = "\n".join(path.read_text(encoding="utf-8") for path in DOCS.rglob("*.md"))
    codes = _error_codes()
    assert len(codes) >= 20
    assert set(never_answered) <= codes
    undocumented = sorted(code for code in codes - set(never_answered) if not re.search(rf"\b{code}\b", docs))
    assert not undocumented, undocumented


def test_the_code_the_docs_name_is_there() -> None:
    """A file path (``tests/test_speech.py``, ``parley/core/api.py``) or a dotted name
    (``parley.usage.quota.QuotaGuard``) in the docs' code names something that exists: code moved without its
    docs fails here."""
    # written by the browser tests and by the web app's build (which runs after the Python tests)
    made_by_runs = {"web/e2e/artifacts/screenshots", "web/e2e/artifacts/results", "web/dist"}
    examples_to_add = ("streaks",)  # development.md's worked example of adding a function
    path_pattern = re.compile(r"(?<![\w./-])(?:(?:functions|tests|local_stack|docsite|statemachines|verify|bench"
                              r"|events|web|stacks|layers)/[\w./-]*|parley/[\w./-]*\.py|parley/[\w/]+/)")
    shared = ROOT / "functions" / "shared"
    sys.path.insert(0, str(shared))
    missing = []
    for path in sorted(DOCS.rglob("*.md")):
        for span in re.findall(r"`([^`\n]+)`", path.read_text(encoding="utf-8")):
            if re.search(r"[<*{…]", span):
                continue  # a pattern or a placeholder, not a name
            for name in path_pattern.findall(span):
                name = name.rstrip(".,/")
                if name in made_by_runs or any(example in name for example in examples_to_add):
                    continue
                if not ((ROOT / name).exists() or (shared / name).exists()):
                    missing.append(f"{_page_id(path)}: {name}")
            for dotted in re.findall(r"(?<![\w./-])parley(?:\.\w+)+", span):
                parts = dotted.split(".")
                found = next((i for i in range(len(parts), 0, -1)
                              if (shared / "/".join(parts[:i])).with_suffix(".py").exists()
                              or (shared / "/".join(parts[:i]) / "__init__.py").exists()), 0)
                target: object = importlib.import_module(".".join(parts[:found])) if found else None
                for attribute in parts[found:]:
                    target = getattr(target, attribute, None)
                if target is None:
                    missing.append(f"{_page_id(path)}: {dotted}")
    assert not missing, "\n".join(missing)


def test_the_api_reference_covers_every_operation_and_schema() -> None:
    document = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))
    page = render_file()
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"{{ #{operation_anchor(method, path)} }}" in page, (method, path)
    for name in document["components"]["schemas"]:
        assert f"{{ #{anchor(name)} }}" in page, name
    assert "](#schema-" in page and "http://" not in page and "https://" not in page
    jargon = re.findall(r".{0,40}(?:\bseeds?\b|\bissue \d).{0,40}", page, re.I)  # from the models' docstrings
    assert not jargon, jargon


# -- the examples' format ---------------------------------------------------------------------------
def test_a_wrong_answer_fails_and_says_where() -> None:
    variables: dict[str, object] = {}
    expected = examples.parse_expected('{"accent": "UK", "id": "{sessionId}", "at": "…", …}')
    assert examples.match(expected, {"accent": "UK", "id": "01ABC", "at": "2026", "more": 1}, variables) == []
    assert variables == {"sessionId": "01ABC"}
    problems = examples.match(expected, {"accent": "US", "id": "01XYZ", "at": 1}, variables)
    assert problems == ["body.accent: expected 'UK', got 'US'", "body.id: {sessionId} was '01ABC', now '01XYZ'"]


def test_an_object_without_ellipsis_must_match_exactly() -> None:
    expected = examples.parse_expected('{"items": [{"a": 1}], "next": null}')
    assert examples.match(expected, {"items": [{"a": 1}], "next": None, "extra": 2}, {}) == [
        "body: the answer also has extra (show them, or end the object with …)"]
    assert examples.match(expected, {"items": [{"a": 1}, {"a": 2}], "next": None}, {}) == [
        "body.items: expected 1 items, got 2"]
    assert examples.match(examples.parse_expected('[1, …]'), [1, 2, 3], {}) == []
    assert examples.match(examples.parse_expected('"SUQz…"'), "SUQzBAAA", {}) == []
    assert examples.match(examples.parse_expected('"SUQz…"'), "//Nk", {}) == [
        "body: expected text like 'SUQz…', got '//Nk'"]
    assert examples.match(examples.parse_expected("true"), 1, {}) == ["body: expected True, got 1"]


def test_a_request_needs_its_answer(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```http\nGET /settings HTTP/1.1\n```\n\nNo answer.\n", encoding="utf-8")
    with pytest.raises(examples.ExampleError, match="not followed by an http block"):
        examples.read_page(page)
    page.write_text("```http\nGET /settings HTTP/1.1\n```\n\n```http\nHTTP/1.1 200 Fine\n```\n", encoding="utf-8")
    with pytest.raises(examples.ExampleError, match="reason phrase of 200 is 'OK'"):
        examples.read_page(page)


def test_every_page_reads_and_most_have_examples() -> None:
    pages = examples.pages()
    assert len(PAGES_WITH_EXAMPLES) >= 10
    assert sum(len(page.examples) for page in pages) >= 60  # a floor: the reader must not drop blocks silently


# -- the examples, run -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack() -> Iterator[ChildStack]:
    with child_stack() as running:
        yield running


@pytest.fixture(scope="module")
def runs(stack: ChildStack) -> Iterator[dict[Path, Future[int]]]:
    """Every page's examples, pages side by side (each on its own device ids), on the one stack."""
    target = examples.Target(stack.rest, stack.websocket)
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield {path: pool.submit(examples.PageRun(examples.read_page(path), target).run)
               for path in PAGES_WITH_EXAMPLES}


@pytest.mark.parametrize("path", PAGES_WITH_EXAMPLES, ids=_page_id)
def test_the_pages_examples_answer_what_the_page_shows(path: Path, runs: dict[Path, Future[int]]) -> None:
    executed = runs[path].result(timeout=600)
    assert executed == len(examples.read_page(path).examples)


def test_getting_started_shows_what_make_run_prints(stack: ChildStack) -> None:
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    shown = next(block.text for block in examples.blocks(page) if block.lang == "console").splitlines()
    shown = shown[shown.index(next(line for line in shown if line.startswith("Parley local stack"))):]

    def shape(line: str) -> str:
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
        # The page shows a built, current web app; this checkout's web/ may be unbuilt or older.
        return re.sub(r"^(  Web app:  )(http://127\.0\.0\.1:PORT/|not built).*", r"\1(the web app)", line)

    printed = [shape(line) for line in stack.banner]
    assert "  Web app:  (the web app)" in printed
    assert printed == [shape(line) for line in shown]


def test_the_local_stack_serves_interactive_api_docs_offline(stack: ChildStack) -> None:
    with urllib.request.urlopen(stack.rest + "/docs", timeout=30) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"].startswith("text/html")
    assert '"/openapi.json"' in page and "validatorUrl: null" in page
    assert not re.search(r"(src|href)=\"https?:", page), "no asset from another host"
    with urllib.request.urlopen(stack.rest + "/docs/swagger-ui-bundle.js", timeout=30) as response:
        assert b"SwaggerUIBundle" in response.read(200_000)
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(stack.rest + "/docs/index.j2", timeout=30)
    assert missing.value.code == 404
