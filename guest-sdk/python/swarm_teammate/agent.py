"""An agent for Python teammates: a tool-using model loop over the host's
`llm` import, the Python side of the Rust SDK's `agent` module.

`Agent(system)` holds a system prompt, tools (a name, a description, a JSON
Schema for the input and a handler), a model alias, a turn limit and
sampling settings. `Agent.run(ctx, task, instructions)` sends the
instructions to the model, runs the tool calls it asks for in the order it
asked, answers all the calls of one turn in one message, and ends when the
model stops asking for tools (the task completes with its text), calls
`finish` (the task completes with that summary and findings) or reaches the
turn limit (the task fails, naming the limit).

The built-in tools work through the sandbox's imports: `read_file`,
`list_files`, `search`, `write_file`, `edit_file`, `send_message` and
`finish`. A refused call (a file the task does not own, a path outside the
root, a file too large) goes back to the model as a tool error with the
reason and the files the task owns; the host counts it as a denial.

Messages that reach the teammate while the agent works are shown to the
model after the turn's tool results, as
`<teammate-message from=".." summary="..">..</teammate-message>` with every
value escaped; a shutdown request is shown the same way (and still answered
by the SDK's loop once the task is over; the host's grace period bounds a
model that ignores it).

An agent in a few lines (`plugins/py-agent/app.py` is the whole plugin)::

    from swarm_teammate import Teammate, export
    from swarm_teammate.agent import Agent

    class Coder(Teammate):
        def on_task(self, ctx, task):
            system = f"You are {ctx.id}. Change only: {', '.join(task.owned_files)}."
            return Agent(system, max_turns=20).run(ctx, task, task.subject)

    WitWorld = export(Coder)
"""

import json
import re
from typing import Callable, Dict, List, Optional, Union

from componentize_py_types import Err
from wit_world.imports import llm as _llm
from wit_world.imports import mailbox as _mailbox

from . import Context, Failed, Finding, FsError, Report, SendError, Severity, Task

__all__ = ["Agent", "Tool", "ToolError", "DEFAULT_MAX_TURNS", "SEARCH_MAX_MATCHES", "escape", "teammate_message"]

#: The turn limit of an agent that sets none.
DEFAULT_MAX_TURNS = 40
#: Most matches one `search` call returns.
SEARCH_MAX_MATCHES = 100

_SEVERITY = {"note": Severity.NOTE, "warning": Severity.WARNING, "error": Severity.ERROR}


class ToolError(Exception):
    """Raised by a tool handler: the text goes back to the model as an error."""


class Tool:
    """A tool the model may call: `handler(agent_ctx, input)` gets the call's
    input (a dict) and returns the text for the model, or raises
    `ToolError` (or `FsError` / `SendError`, turned into a tool error)."""

    def __init__(self, name: str, description: str, schema: dict, handler: Callable[["ToolCtx", dict], str]):
        self.name = name
        self.description = description
        self.schema = schema
        self.handler = handler


class ToolCtx:
    """What a handler gets: the teammate's `ctx`, the `task`, and `finish`."""

    def __init__(self, ctx: Context, task: Task) -> None:
        self.ctx = ctx
        self.task = task
        self.finished: Optional[Report] = None

    def finish(self, report: Report) -> None:
        """Ends the loop after this turn's calls, completing the task."""
        self.finished = report

    def refusal(self, err: FsError) -> str:
        """A refused workspace call, for the model: the reason and the files
        the task owns."""
        if err.kind not in ("denied", "invalid-path", "too-large"):
            return err.describe()
        owned = ", ".join(self.task.owned_files) or "(none)"
        return (
            f"refused: {err.describe()}. This task owns only these files (only they can change): {owned}. "
            "For anything else, ask the team lead with send_message."
        )


def escape(text: str) -> str:
    """`text` with `&`, `<`, `>`, `"` and `'` escaped for XML."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def teammate_message(sender: str, summary: Optional[str], body: str) -> str:
    """A message as the model sees it, every value escaped."""
    summary_attr = f' summary="{escape(summary)}"' if summary else ""
    return f'<teammate-message from="{escape(sender)}"{summary_attr}>{escape(body)}</teammate-message>'


class Agent:
    """A model loop with tools; see the module doc."""

    def __init__(
        self,
        system: str,
        model: Optional[str] = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        temperature: Optional[float] = None,
        max_output_tokens: Optional[int] = None,
    ) -> None:
        self.system = system
        self.model = model
        self.max_turns = max_turns
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.tools: Dict[str, Tool] = {t.name: t for t in _builtin_tools()}

    def tool(self, tool: Tool) -> "Agent":
        """Adds (or replaces) a tool."""
        self.tools[tool.name] = tool
        return self

    def without(self, name: str) -> "Agent":
        """Drops a tool, e.g. a built-in one."""
        self.tools.pop(name, None)
        return self

    def run(self, ctx: Context, task: Task, instructions: str) -> Union[Report, Failed]:
        """Runs the loop on `task` until it ends; the result is what
        `on_task` returns."""
        tool_ctx = ToolCtx(ctx, task)
        messages: List[_llm.Message] = [_llm.Message(_llm.Role.USER, [_llm.ContentBlock_Text(instructions)])]
        specs = [_llm.Tool(t.name, t.description, json.dumps(t.schema)) for t in self.tools.values()]
        for _turn in range(self.max_turns):
            request = _llm.Request(
                self.system, messages, specs, None, self.max_output_tokens, self.temperature, []
            )
            try:
                response = _llm.complete(self.model, request)
            except Err as e:
                return Failed(f"model call failed: {_describe_llm_error(e.value)}")
            messages.append(_llm.Message(_llm.Role.ASSISTANT, response.content))
            calls = [b.value for b in response.content if isinstance(b, _llm.ContentBlock_ToolCall)]
            if not calls:
                text = " ".join(b.value for b in response.content if isinstance(b, _llm.ContentBlock_Text))
                return Report(text.strip() or "the model ended its turn")
            answer: List[_llm.ContentBlock] = [
                _llm.ContentBlock_ToolResult(self._call(tool_ctx, call)) for call in calls
            ]
            answer.extend(_llm.ContentBlock_Text(m) for m in _arrived(ctx))
            messages.append(_llm.Message(_llm.Role.USER, answer))
            if tool_ctx.finished is not None:
                return tool_ctx.finished
        return Failed(f"turn limit hit: max_turns = {self.max_turns} and the model had not finished")

    def _call(self, tool_ctx: ToolCtx, call: _llm.ToolCall) -> _llm.ToolResult:
        tool = self.tools.get(call.name)
        if tool is None:
            return _llm.ToolResult(call.id, f"unknown tool {call.name!r}; tools: {', '.join(self.tools)}", True)
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError as e:
            return _llm.ToolResult(call.id, f"the arguments are not JSON: {e}", True)
        if not isinstance(args, dict):
            return _llm.ToolResult(call.id, "the arguments must be a JSON object", True)
        try:
            return _llm.ToolResult(call.id, tool.handler(tool_ctx, args), False)
        except FsError as e:
            return _llm.ToolResult(call.id, tool_ctx.refusal(e), True)
        except (ToolError, SendError) as e:
            return _llm.ToolResult(call.id, str(e), True)
        except (KeyError, TypeError) as e:
            return _llm.ToolResult(call.id, f"bad input for {call.name}: {e!r}", True)


def _arrived(ctx: Context) -> List[str]:
    """Every delivery waiting in the mailbox, as text for the model. A
    shutdown request or `tasks-available` is also kept for the SDK's loop."""
    shown = []
    while True:
        incoming = _mailbox.recv(0)
        if incoming is None:
            return shown
        if isinstance(incoming, _mailbox.Incoming_Message):
            m = incoming.value
            shown.append(teammate_message(m.sender, m.summary, m.body))
            continue
        ctx._pending.append(incoming)
        if isinstance(incoming, _mailbox.Incoming_Shutdown):
            shown.append(teammate_message("team-lead", "shutdown request", incoming.value.reason))


def _describe_llm_error(err: object) -> str:
    name = type(err).__name__.removeprefix("LlmError_")
    words = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    value = getattr(err, "value", None)
    return f"{words}: {value}" if value is not None else words


def _str(args: dict, key: str) -> str:
    value = args[key]
    if not isinstance(value, str):
        raise ToolError(f"{key} must be a string")
    return value


def _read_file(t: ToolCtx, args: dict) -> str:
    return t.ctx.read_text(_str(args, "path"))


def _list_files(t: ToolCtx, args: dict) -> str:
    entries = t.ctx.list(args.get("path") or "")
    return "\n".join(f"{e.path}/" if e.is_dir else f"{e.path} ({e.size} bytes)" for e in entries) or "(empty)"


def _search(t: ToolCtx, args: dict) -> str:
    try:
        pattern = re.compile(_str(args, "pattern"))
    except re.error as e:
        raise ToolError(f"not a regular expression: {e}") from None
    hits: List[str] = []
    for path in t.task.owned_files:
        try:
            text = t.ctx.read_text(path)
        except FsError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                if len(hits) == SEARCH_MAX_MATCHES:
                    return "\n".join(hits) + f"\n(stopped at {SEARCH_MAX_MATCHES} matches)"
                hits.append(f"{path}:{n}: {line}")
    return "\n".join(hits) or "no match"


def _write_file(t: ToolCtx, args: dict) -> str:
    path, contents = _str(args, "path"), _str(args, "contents")
    t.ctx.write(path, contents)
    return f"wrote {len(contents.encode('utf-8'))} bytes to {path}"


def _edit_file(t: ToolCtx, args: dict) -> str:
    path, old, new = _str(args, "path"), _str(args, "old"), _str(args, "new")
    text = t.ctx.read_text(path)
    count = text.count(old) if old else 0
    if count != 1:
        found = "not found" if count == 0 else f"found {count} times"
        raise ToolError(f"edit_file: `old` must occur exactly once in {path}; it was {found}")
    t.ctx.write(path, text.replace(old, new, 1))
    return f"edited {path}"


def _send_message(t: ToolCtx, args: dict) -> str:
    to, body = _str(args, "to"), _str(args, "body")
    t.ctx.send(to, body, args.get("summary"))
    return f"sent to {to}"


def _finish(t: ToolCtx, args: dict) -> str:
    report = Report(_str(args, "summary"))
    for f in args.get("findings") or []:
        severity = _SEVERITY.get(f.get("severity", "warning"), Severity.WARNING)
        report.push(Finding(f["file"], f.get("line"), f["rule"], f.get("message", ""), severity))
    t.finish(report)
    return "finished"


def _obj(props: dict, required: List[str]) -> dict:
    return {"type": "object", "properties": props, "required": required}


_S = {"type": "string"}


def _builtin_tools() -> List[Tool]:
    finding = _obj(
        {"file": _S, "line": {"type": "integer"}, "rule": _S, "message": _S,
         "severity": {"enum": ["note", "warning", "error"]}},
        ["file", "rule"],
    )
    return [
        Tool("read_file", "Reads a UTF-8 file of the workspace.", _obj({"path": _S}, ["path"]), _read_file),
        Tool("list_files", "Lists a directory of the workspace (\"\" is the root).", _obj({"path": _S}, []), _list_files),
        Tool(
            "search",
            f"Searches the task's files for a regular expression; file:line results, at most {SEARCH_MAX_MATCHES}.",
            _obj({"pattern": _S}, ["pattern"]),
            _search,
        ),
        Tool("write_file", "Writes a whole file the task owns.", _obj({"path": _S, "contents": _S}, ["path", "contents"]), _write_file),
        Tool(
            "edit_file",
            "Replaces the one occurrence of `old` with `new` in a file the task owns.",
            _obj({"path": _S, "old": _S, "new": _S}, ["path", "old", "new"]),
            _edit_file,
        ),
        Tool(
            "send_message",
            "Sends a message to a teammate or to team-lead.",
            _obj({"to": _S, "body": _S, "summary": _S}, ["to", "body"]),
            _send_message,
        ),
        Tool(
            "finish",
            "Ends the task with a summary and optional findings.",
            _obj({"summary": _S, "findings": {"type": "array", "items": finding}}, ["summary"]),
            _finish,
        ),
    ]
