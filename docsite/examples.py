"""Examples that run: every request/response example in docs/ is executed against the local stack.

    python -m docsite.examples                          # start a local stack, run every page's examples
    python -m docsite.examples docs/api/tutor.md --url http://127.0.0.1:3000   # against `make run`

The format (docs/development.md, "Examples that run", says it for writers):

- An ``http`` block whose first line is a request line (``POST /sessions HTTP/1.1``) is a request:
  headers, a blank line, the body. The next block must be an ``http`` block whose first line is a
  status line (``HTTP/1.1 201 Created``): the status must be that, every header it lists must be in
  the answer, and the body must match its JSON.
- A ``bash`` block that uses ``$API`` (or ``$WS``) is a shell example: a page's shell examples run in
  order in one bash (``set -euo pipefail``), so a variable set in one is there in the next. A
  ``json`` block right after one (nothing but blank lines between) is what it must print.
- In an expected answer, what varies is marked: ``"…"`` is any value; ``…`` inside a string is any
  text (``"SUQzBA…"``); a bare ``…`` in an object stands for members not shown, at the end of an array
  for more items; ``"{name}"`` captures the value the first time and must equal it afterwards, and
  ``{name}`` in a later request (path, header or body) is replaced by it.
- Each page runs in order on device ids of its own (``my-device-0001`` becomes, say,
  ``docs-api-tutor-0001-k3x9``), so its examples build on each other and pages never see each
  other's data. The page's ``http://127.0.0.1:3000`` and ``ws://127.0.0.1:3001`` become the running
  stack's addresses.
- A ``websocket`` block is an exchange on one connection: ``CONNECT ws://127.0.0.1:3001/?deviceId=…``,
  then ``> {frame sent}`` and ``< {frame expected}`` lines, in order; ``< …`` lets any frames pass
  (the deltas of a streamed answer) until the next expected one arrives.
- A GET whose answer differs is asked again, as a client polls: for up to ten seconds (the usage
  pipeline counts in the background), and for up to two minutes while it says ``"status": "queued"``
  or ``"running"``.
"""

from __future__ import annotations

import argparse
import contextlib
import http
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.child import child_stack

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PRINTED_API = "http://127.0.0.1:3000"
PRINTED_WS = "ws://127.0.0.1:3001"
ELLIPSIS = "…"
PENDING = ("queued", "running")
POLL_SECONDS = 120.0
SETTLE_SECONDS = 10.0
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>.*)$")
REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\S+) HTTP/1\.1$")
STATUS_LINE = re.compile(r"^HTTP/1\.1 (\d{3})(?: (.*))?$")
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
DEVICE = re.compile(r"my-device-(\d{4})")
SHELL_MARKER = re.compile(r"\$\{?(API|WS)\}?(?![A-Za-z0-9_])")
ASSIGNMENT = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=", re.M)


class ExampleError(AssertionError):
    """An example whose answer differs from the page, or that cannot be run as written."""


@dataclass
class Block:
    """A fenced code block: its language, its text (dedented), and the line its fence opens on."""

    lang: str
    text: str
    line: int
    end_line: int
    title: str = ""


@dataclass
class HttpExample:
    line: int
    method: str
    path: str
    headers: dict[str, str]
    body: str
    status: int
    reason: str
    response_line: int
    expected_headers: dict[str, str]
    expected_body: str


@dataclass
class ShellExample:
    line: int
    script: str
    expected_line: int = 0
    expected_output: str | None = None


@dataclass
class WebSocketExample:
    """A ``websocket`` block: ``CONNECT <url>``, then ``> <frame sent>`` and ``< <frame expected>`` lines
    (a line that starts with a space continues the one before; ``< …`` lets any frames pass until the
    next expected one arrives)."""

    line: int
    url: str
    steps: list[tuple[str, str]]


Example = HttpExample | ShellExample | WebSocketExample


@dataclass
class Page:
    path: Path
    examples: list[Example] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix() if self.path.is_relative_to(ROOT) else str(self.path)


# -- reading pages ---------------------------------------------------------------------------------
def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        lang = info.split()[0].strip("{}.") if info else ""
        title = (re.search(r'title="([^"]*)"', info) or [None, ""])[1] or ""
        body: list[str] = []
        start = index
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            index += 1
        found.append(Block(lang=lang, text="\n".join(body), line=start + 1, end_line=index + 1, title=title))
        index += 1
    return found


def _only_blank_between(lines: list[str], first: Block, second: Block) -> bool:
    return all(not line.strip() for line in lines[first.end_line:second.line - 1])


def _parse_message(block: Block, page: Path) -> tuple[str, dict[str, str], str]:
    head, _, body = block.text.partition("\n\n")
    first, *header_lines = head.splitlines()
    headers: dict[str, str] = {}
    for header in header_lines:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ExampleError(f"{page}:{block.line}: not a header line: {header!r}")
        headers[name.strip()] = value.strip()
    return first.strip(), headers, body.strip()


def read_page(path: Path) -> Page:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = blocks(text)
    page = Page(path)
    skip: set[int] = set()
    for position, block in enumerate(found):
        if position in skip:
            continue
        if block.lang == "http":
            first_line = block.text.splitlines()[0].strip() if block.text.strip() else ""
            request = REQUEST_LINE.match(first_line)
            if not request:
                raise ExampleError(f"{path}:{block.line}: an http block must start with a request line "
                                   f"(`GET /path HTTP/1.1`) or follow one as its answer: {first_line!r}")
            answer = found[position + 1] if position + 1 < len(found) else None
            status = STATUS_LINE.match(answer.text.splitlines()[0].strip()) \
                if answer is not None and answer.lang == "http" and answer.text.strip() else None
            if answer is None or status is None:
                raise ExampleError(f"{path}:{block.line}: the request is not followed by an http block "
                                   "starting with its status line (`HTTP/1.1 200 OK`)")
            _, headers, body = _parse_message(block, path)
            _, expected_headers, expected_body = _parse_message(answer, path)
            code = int(status[1])
            reason = (status[2] or "").strip()
            if reason != http.HTTPStatus(code).phrase:
                raise ExampleError(f"{path}:{answer.line}: `HTTP/1.1 {code} {reason}`: the reason phrase "
                                   f"of {code} is {http.HTTPStatus(code).phrase!r}")
            page.examples.append(HttpExample(
                line=block.line, method=request[1], path=request[2], headers=headers, body=body, status=code,
                reason=reason, response_line=answer.line, expected_headers=expected_headers,
                expected_body=expected_body))
            skip.add(position + 1)
        elif block.lang == "websocket":
            page.examples.append(_websocket_example(block, path))
        elif block.lang in ("bash", "sh", "shell") and SHELL_MARKER.search(block.text):
            example = ShellExample(line=block.line, script=block.text)
            following = found[position + 1] if position + 1 < len(found) else None
            if following is not None and following.lang == "json" and _only_blank_between(lines, block, following):
                example.expected_line = following.line
                example.expected_output = following.text
                skip.add(position + 1)
            page.examples.append(example)
    return page


def _websocket_example(block: Block, page: Path) -> WebSocketExample:
    first, *rest = block.text.splitlines()
    if not first.startswith("CONNECT "):
        raise ExampleError(f"{page}:{block.line}: a websocket block starts with `CONNECT ws://…`")
    steps: list[tuple[str, str]] = []
    for line in rest:
        if line.startswith((" ", "\t")) and steps:
            steps[-1] = (steps[-1][0], steps[-1][1] + "\n" + line)
        elif line[:2] in ("> ", "< "):
            steps.append((line[0], line[2:]))
        elif line.strip():
            raise ExampleError(f"{page}:{block.line}: a websocket line starts with `> ` (sent) or `< ` (received): "
                               f"{line!r}")
    return WebSocketExample(line=block.line, url=first.removeprefix("CONNECT ").strip(), steps=steps)


def pages(paths: list[Path] | None = None) -> list[Page]:
    chosen = paths or sorted(DOCS.rglob("*.md"))
    return [read_page(path) for path in chosen]


# -- expected JSON with ellipses -------------------------------------------------------------------
class _More:
    """The bare … of an object or array: members or items not shown."""

    def __repr__(self) -> str:
        return ELLIPSIS


MORE = _More()
MORE_KEY = "\u0000more"


def parse_expected(text: str) -> Any:
    """JSON, plus a bare … standing for members (in an object) or items (in an array) not shown."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append(char)
        elif char in "}]":
            stack.pop() if stack else None
        elif char == ELLIPSIS:
            out.append(json.dumps(MORE_KEY) + ": null" if stack and stack[-1] == "{" else json.dumps(MORE_KEY))
            continue
        out.append(char)
    try:
        value = json.loads("".join(out))
    except json.JSONDecodeError as error:
        raise ExampleError(f"the expected answer is not JSON (with … marks): {error}") from None
    return _mark_more(value)


def _mark_more(value: Any) -> Any:
    if isinstance(value, dict):
        marked: dict[str, Any] = {k: _mark_more(v) for k, v in value.items() if k != MORE_KEY}
        if MORE_KEY in value or value.get(ELLIPSIS) == ELLIPSIS:
            marked.pop(ELLIPSIS, None)
            marked[MORE_KEY] = MORE
        return marked
    if isinstance(value, list):
        return [MORE if item == MORE_KEY else _mark_more(item) for item in value]
    return value


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*?" if part == ELLIPSIS else re.escape(part)
                              for part in re.split(f"({ELLIPSIS})", pattern)) + r"\Z", re.S)


def match(expected: Any, actual: Any, variables: dict[str, Any], where: str = "body") -> list[str]:
    """What differs between the page's answer and the real one, one line per difference."""
    if isinstance(expected, str):
        whole = VARIABLE.fullmatch(expected)
        if whole:
            name = whole[1]
            if name not in variables:
                variables[name] = actual
                return []
            return [] if variables[name] == actual else [f"{where}: {{{name}}} was {variables[name]!r}, "
                                                         f"now {actual!r}"]
        if expected == ELLIPSIS:
            return []
        wanted = substitute(expected, variables, quoted=False)
        if ELLIPSIS in wanted:
            return [] if isinstance(actual, str) and _glob(wanted).match(actual) else \
                [f"{where}: expected text like {wanted!r}, got {actual!r}"]
        return [] if actual == wanted else [f"{where}: expected {wanted!r}, got {actual!r}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems: list[str] = []
        partial = MORE_KEY in expected
        for key, value in expected.items():
            if key == MORE_KEY:
                continue
            if key not in actual:
                problems.append(f"{where}.{key}: missing from the answer")
            else:
                problems += match(value, actual[key], variables, f"{where}.{key}")
        if not partial:
            extra = sorted(set(actual) - set(expected))
            if extra:
                problems.append(f"{where}: the answer also has {', '.join(extra)} (show them, or end the "
                                f"object with …)")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected an array, got {actual!r}"]
        head = expected[:-1] if expected and expected[-1] is MORE else expected
        if len(head) != len(expected) and len(actual) < len(head):
            return [f"{where}: expected at least {len(head)} items, got {len(actual)}"]
        if len(head) == len(expected) and len(actual) != len(head):
            return [f"{where}: expected {len(head)} items, got {len(actual)}"]
        problems = []
        for index, item in enumerate(head):
            problems += match(item, actual[index], variables, f"{where}[{index}]")
        return problems
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None:
        return [] if expected is actual else [f"{where}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual and type(actual) in (int, float) else \
        [f"{where}: expected {expected!r}, got {actual!r}"]


def substitute(text: str, variables: dict[str, Any], *, quoted: bool = True, in_url: bool = False) -> str:
    """Replace ``{name}`` by a captured value (``"{name}"`` by its JSON when ``quoted``; URL-encoded
    ``in_url``, as a client builds a path or query from a value)."""
    if quoted:
        def whole(found: re.Match[str]) -> str:
            name = found[1]
            return json.dumps(variables[name]) if name in variables else found[0]

        text = re.sub(r'"\{([A-Za-z_][A-Za-z0-9_]*)\}"', whole, text)

    def inline(found: re.Match[str]) -> str:
        name = found[1]
        if name not in variables:
            return found[0]
        return urllib.parse.quote(str(variables[name]), safe="") if in_url else str(variables[name])

    return VARIABLE.sub(inline, text)


# -- running ---------------------------------------------------------------------------------------
@dataclass
class Target:
    """The running stack the examples go to, and how the page's printed addresses map onto it."""

    api: str
    websocket: str = ""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _send(target: Target, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
    request = urllib.request.Request(target.api + path, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


class PageRun:
    """One page's examples, in order, with the page's own device ids and variables."""

    def __init__(self, page: Page, target: Target) -> None:
        self.page = page
        self.target = target
        path = page.path.resolve()
        name = "-".join(path.relative_to(DOCS).with_suffix("").parts) if path.is_relative_to(DOCS) else path.stem
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower())[:24]
        self.devices = f"docs-{slug}-{{0}}-{secrets.token_hex(2)}"
        self.variables: dict[str, Any] = {}
        self.executed = 0
        self.scratch = Path()

    def localise(self, text: str) -> str:
        text = DEVICE.sub(lambda found: self.devices.format(found[1]), text)
        text = text.replace(PRINTED_API, self.target.api)
        return text.replace(PRINTED_WS, self.target.websocket) if self.target.websocket else text

    def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="parley-docs-") as scratch:
            self.scratch = Path(scratch)
            (self.scratch / "state.sh").write_text("")
            for example in self.page.examples:
                if isinstance(example, HttpExample):
                    self._run_http(example)
                elif isinstance(example, WebSocketExample):
                    self._run_websocket(example)
                else:
                    self._run_shell(example)
        return self.executed

    def _where(self, line: int) -> str:
        return f"{self.page.name}:{line}"

    def _run_http(self, example: HttpExample) -> None:
        path = self.localise(substitute(example.path, self.variables, quoted=False, in_url=True))
        undefined = VARIABLE.findall(path)
        if undefined:
            raise ExampleError(f"{self._where(example.line)}: {{{undefined[0]}}} is not captured by an earlier "
                               "example on this page")
        headers = {name: self.localise(substitute(value, self.variables, quoted=False))
                   for name, value in example.headers.items()}
        body = self.localise(substitute(example.body, self.variables)).encode()
        expected_body = self.localise(example.expected_body)
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            variables = dict(self.variables)
            answer = _send(self.target, example.method, path, headers, body)
            problems = self._compare(example, answer, expected_body, variables)
            if not problems:
                self.variables = variables
                self.executed += 1
                return
            # A GET is asked again, as a client polls: for a few seconds (the usage pipeline counts in the
            # background), and for up to two minutes while the answer says queued or running.
            waited = time.monotonic() - (deadline - POLL_SECONDS)
            pending = example.method == "GET" and (_status_of(answer) in PENDING or waited < SETTLE_SECONDS)
            if not pending or time.monotonic() > deadline:
                shown = answer.body.decode(errors="replace")
                with contextlib.suppress(ValueError):
                    shown = json.dumps(json.loads(answer.body), ensure_ascii=False, indent=2)
                raise ExampleError(
                    f"{self._where(example.response_line)}: {example.method} {example.path} answered "
                    f"differently from the page:\n  " + "\n  ".join(problems)
                    + f"\nThe answer was HTTP {answer.status}:\n{shown}")
            time.sleep(0.25)

    def _compare(self, example: HttpExample, answer: Answer, expected_body: str,
                 variables: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        if answer.status != example.status:
            problems.append(f"status: expected {example.status}, got {answer.status}")
        actual_headers = {name.lower(): value for name, value in answer.headers.items()}
        for name, value in example.expected_headers.items():
            got = actual_headers.get(name.lower())
            if got is None:
                problems.append(f"header {name}: missing")
            else:
                problems += match(value, got, variables, f"header {name}")
        if not expected_body:
            if answer.body:
                problems.append(f"body: expected none, got {answer.body[:200]!r}")
            return problems
        try:
            actual = json.loads(answer.body)
        except ValueError:
            return [*problems, f"body: not JSON: {answer.body[:200]!r}"]
        try:
            expected = parse_expected(expected_body)
        except ExampleError as error:
            raise ExampleError(f"{self._where(example.response_line)}: {error}") from None
        return problems + match(expected, actual, variables)

    def _run_shell(self, example: ShellExample) -> None:
        """One bash per block; the variables a block assigns are kept for the page's next blocks."""
        assigned = sorted(set(ASSIGNMENT.findall(example.script)))
        keep = f"declare -p {' '.join(assigned)} >> state.sh" if assigned else ":"
        script = f"set -euo pipefail\nsource state.sh\n{self.localise(example.script)}\n{keep} 2>/dev/null"
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        result = subprocess.run(["bash", "-c", script], cwd=self.scratch, env=env,
                                capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            raise ExampleError(f"{self._where(example.line)}: the shell example failed (exit {result.returncode})"
                               f":\n{result.stderr[-2000:]}{result.stdout[-2000:]}")
        if example.expected_output is not None:
            self._compare_output(example, result.stdout)
        self.executed += 1

    def _run_websocket(self, example: WebSocketExample) -> None:
        from websockets.sync.client import connect

        url = self.localise(substitute(example.url, self.variables, quoted=False))
        variables = dict(self.variables)
        received: list[Any] = []
        with connect(url, open_timeout=30, max_size=2**20) as socket:
            skipping = False
            for kind, text in example.steps:
                if kind == ">":
                    socket.send(self.localise(substitute(text, variables)))
                    continue
                if text.strip() == ELLIPSIS:
                    skipping = True
                    continue
                expected = parse_expected(self.localise(text))
                for _ in range(500):
                    frame = json.loads(socket.recv(timeout=60))
                    received.append(frame)
                    trial = dict(variables)
                    problems = match(expected, frame, trial, "frame")
                    if not problems:
                        variables = trial
                        break
                    if not skipping:
                        raise ExampleError(
                            f"{self._where(example.line)}: the WebSocket sent another frame than the page shows:\n  "
                            + "\n  ".join(problems) + "\nFrames so far:\n"
                            + "\n".join(json.dumps(f, ensure_ascii=False)[:300] for f in received))
                else:
                    raise ExampleError(f"{self._where(example.line)}: no frame like {text[:200]} arrived")
                skipping = False
        self.variables = variables
        self.executed += 1

    def _compare_output(self, example: ShellExample, printed: str) -> None:
        assert example.expected_output is not None
        try:
            actual = json.loads(printed)
        except ValueError:
            raise ExampleError(f"{self._where(example.line)}: printed something that is not one JSON value:\n"
                               f"{printed[:2000]}") from None
        try:
            expected = parse_expected(self.localise(example.expected_output))
        except ExampleError as error:
            raise ExampleError(f"{self._where(example.expected_line)}: {error}") from None
        problems = match(expected, actual, self.variables, "output")
        if problems:
            raise ExampleError(f"{self._where(example.expected_line)}: the shell example printed something else "
                               "than the page shows:\n  " + "\n  ".join(problems)
                               + "\nIt printed:\n" + json.dumps(actual, ensure_ascii=False, indent=2))


def _status_of(answer: Answer) -> Any:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to run (default: every page under docs/)")
    parser.add_argument("--url", help="a running stack (`make run`), e.g. http://127.0.0.1:3000; "
                                      "default: start one on free ports")
    parser.add_argument("--websocket", default="", help="its WebSocket URL (default: the --url port + 1)")
    args = parser.parse_args()
    chosen = [page for page in pages([path.resolve() for path in args.pages] or None) if page.examples]
    with contextlib.ExitStack() as stack:
        if args.url:
            port = int(args.url.rsplit(":", 1)[1])
            target = Target(args.url.rstrip("/"), args.websocket or f"ws://127.0.0.1:{port + 1}")
        else:
            running = stack.enter_context(child_stack("--no-web"))
            target = Target(running.rest, running.websocket)
        total = 0
        failed = 0
        for page in chosen:
            try:
                count = PageRun(page, target).run()
                total += count
                print(f"ok    {page.name}: {count} examples")
            except ExampleError as error:
                failed += 1
                print(f"FAIL  {error}")
        print(f"{total} examples on {len(chosen)} pages; {failed} pages failed")
        sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
