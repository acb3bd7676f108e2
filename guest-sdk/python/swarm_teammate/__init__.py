"""Write swarm-host teammates in Python.

A teammate is a WebAssembly component that implements the world `teammate`
of the WIT package `swarm:teammate` (`wit/teammate.wit`). `componentize-py`
turns a Python module into such a component; this package hides the
generated bindings behind one class, `Teammate`, whose handlers all have
defaults, and one function, `export`. The SDK owns the loop, exactly like
the Rust SDK (`guest-sdk/src/lib.rs`): it drains the mailbox, claims tasks,
reports results, answers shutdown requests and, when there is nothing to do,
tells the team lead it is idle and waits in the host (suspended, no polling)
for the next message.

Example (`app.py`)::

    from swarm_teammate import Teammate, Report, Finding, export

    class LongLines(Teammate):
        def on_task(self, ctx, task):
            findings = []
            for i, path in enumerate(task.owned_files):
                for n, line in enumerate(ctx.read_text(path).splitlines(), 1):
                    if len(line) > 100:
                        findings.append(Finding(path, n, "long-line", "over 100 chars"))
                ctx.progress(i + 1, len(task.owned_files))
            return Report(f"{len(findings)} long lines", findings)

    WitWorld = export(LongLines)

Build it with::

    componentize-py -d wit -w teammate componentize -p guest-sdk/python -p . app -o app.wasm

A handler that raises fails the held task with the exception's text; so does
returning a string from `on_task` (`Failed("why")` says it explicitly).
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, List, Optional, Union

from componentize_py_types import Err
from wit_world.imports import log as _log
from wit_world.imports import mailbox as _mailbox
from wit_world.imports import task_list as _task_list
from wit_world.imports import types as _types
from wit_world.imports import workspace as _workspace

__all__ = [
    "Context",
    "DependencyResult",
    "Failed",
    "Finding",
    "FsError",
    "IDLE_WAIT_MS",
    "Level",
    "Message",
    "Report",
    "SendError",
    "Severity",
    "Shutdown",
    "TEAM_LEAD",
    "Task",
    "TaskError",
    "Teammate",
    "export",
]

#: The sender id of the team lead (the coordinator).
TEAM_LEAD = "team-lead"

#: How long (ms) the idle loop waits in `mailbox.recv`: the longest wait the
#: WIT allows, i.e. no timeout. The host pushes `tasks-available` when work
#: appears, so an idle teammate costs no wake-ups.
IDLE_WAIT_MS = 0xFFFF_FFFF

Severity = _types.Severity
Level = _log.Level
Task = _types.Task
Message = _mailbox.Message


class Finding:
    """One thing a teammate found: file, 1-based line (or None for the whole
    file), rule id, message and severity (`Severity.WARNING` by default)."""

    __slots__ = ("file", "line", "rule", "message", "severity")

    def __init__(
        self,
        file: str,
        line: Optional[int],
        rule: str,
        message: str,
        severity: Severity = Severity.WARNING,
    ) -> None:
        self.file = file
        self.line = line
        self.rule = rule
        self.message = message
        self.severity = severity

    def __repr__(self) -> str:
        return f"Finding({self.file!r}, {self.line!r}, {self.rule!r}, {self.message!r}, {self.severity})"

    def _wit(self) -> _types.RatedFinding:
        return _types.RatedFinding(self.file, self.line, self.rule, self.message, self.severity)


class Report:
    """The result of a completed task: a one-line summary and findings."""

    def __init__(self, summary: str, findings: Optional[List[Finding]] = None) -> None:
        self.summary = summary
        self.findings = list(findings or [])

    def push(self, finding: Finding) -> None:
        """Adds one finding."""
        self.findings.append(finding)

    def _wit(self) -> _types.RatedReport:
        return _types.RatedReport(self.summary, [f._wit() for f in self.findings])


class DependencyResult:
    """What a task the held task was `blocked_by` produced (WIT
    `dependency-result`): its `task_id`, `subject` and report `summary`, its
    `findings` (a list of `Finding`; the first ones, within the host's budget
    of 64 KiB of text for all dependencies of a claim) and
    `omitted_findings`, how many were left out for that budget."""

    __slots__ = ("task_id", "subject", "summary", "findings", "omitted_findings")

    def __init__(
        self,
        task_id: str,
        subject: str,
        summary: str,
        findings: Optional[List[Finding]] = None,
        omitted_findings: int = 0,
    ) -> None:
        self.task_id = task_id
        self.subject = subject
        self.summary = summary
        self.findings = list(findings or [])
        self.omitted_findings = omitted_findings

    def __repr__(self) -> str:
        return (
            f"DependencyResult({self.task_id!r}, {self.subject!r}, {self.summary!r}, "
            f"{self.findings!r}, {self.omitted_findings!r})"
        )

    @classmethod
    def _from_wit(cls, dep: _types.DependencyResult) -> "DependencyResult":
        findings = [Finding(f.file, f.line, f.rule, f.message, f.severity) for f in dep.findings]
        return cls(dep.task_id, dep.subject, dep.summary, findings, dep.omitted_findings)


@dataclass
class Failed:
    """Returned by `on_task` to fail the task with `reason` (the host may
    retry it, see `task.attempt`)."""

    reason: str


@dataclass
class Shutdown:
    """The answer to a shutdown request: `Shutdown()` approves (the SDK
    answers and `run` returns); `Shutdown(reject="why")` keeps running."""

    reject: Optional[str] = None


class _HostError(Exception):
    """A refused call: `kind` is the WIT error variant's case, `detail` its
    payload. Subclasses map the generated case classes to kinds (`_KINDS`,
    `_OTHER` for a case this SDK does not know) and say it in `describe`."""

    _KINDS: dict = {}
    _OTHER = ""
    #: What `too-large` was over: `message limit`, `read limit`.
    _LIMIT = "message limit"

    def __init__(self, kind: str, detail: Union[str, int]) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(self.describe())

    @classmethod
    def _from_wit(cls, err: Err) -> "_HostError":
        value = err.value
        return cls(cls._KINDS.get(type(value), cls._OTHER), value.value)

    def describe(self) -> str:
        """One line for people, e.g. `unknown recipient: bob` or `not held: t3`."""
        if self.kind == "too-large":
            return f"too large: over the {self._LIMIT} of {self.detail} bytes"
        return f"{self.kind.replace('-', ' ')}: {self.detail}"


class FsError(_HostError):
    """A refused workspace call. `kind` is `denied`, `not-found`,
    `invalid-path`, `too-large` or `io`; `detail` is the host's text (or the
    limit in bytes for `too-large`)."""

    _KINDS = {
        _workspace.FsError_Denied: "denied",
        _workspace.FsError_NotFound: "not-found",
        _workspace.FsError_InvalidPath: "invalid-path",
        _workspace.FsError_TooLarge: "too-large",
        _workspace.FsError_Io: "io",
    }
    _OTHER = "io"
    _LIMIT = "read limit"

    def describe(self) -> str:
        """One line for people, e.g. `denied: src/a.py is not owned by task t1`."""
        if self.kind == "io":
            return f"I/O error: {self.detail}"
        return super().describe()


class SendError(_HostError):
    """A refused send. `kind` is `unknown-recipient`, `too-large` or
    `inbox-full`; `detail` is the recipient (or the limit in bytes)."""

    _KINDS = {
        _mailbox.SendError_UnknownRecipient: "unknown-recipient",
        _mailbox.SendError_TooLarge: "too-large",
        _mailbox.SendError_InboxFull: "inbox-full",
    }
    _OTHER = "unknown-recipient"


class TaskError(_HostError):
    """A refused task-list call. `kind` is `not-held` (no task of that id is
    held by this teammate; `detail` is the host's text) or `too-large`
    (`detail` is the limit in bytes)."""

    _KINDS = {
        _task_list.TaskError_NotHeld: "not-held",
        _task_list.TaskError_TooLarge: "too-large",
    }
    _OTHER = "not-held"


class Context:
    """What a handler can do: who it is, the mailbox, the workspace, the log
    and what the held task's dependencies produced. Every method wraps one import of the WIT world; the host checks each
    call and the exceptions say why a call was refused."""

    def __init__(self, me: _types.Identity) -> None:
        self.id: str = me.id
        self.team: str = me.team
        self.color: str = me.color
        # Deliveries received by `recv` that the loop still has to handle.
        self._pending: Deque[object] = deque()

    # ----- mailbox -----------------------------------------------------

    def send(self, to: str, body: str, summary: Optional[str] = None) -> None:
        """Sends `body` to teammate `to` (or `TEAM_LEAD`). Raises `SendError`."""
        try:
            _mailbox.send(to, body, summary)
        except Err as e:
            raise SendError._from_wit(e) from None

    def reply(self, msg: Message, body: str) -> None:
        """Sends `body` to the sender of `msg`."""
        self.send(msg.sender, body)

    def broadcast(self, body: str, summary: Optional[str] = None) -> None:
        """Sends `body` to every other teammate. Raises `SendError`."""
        try:
            _mailbox.broadcast(body, summary)
        except Err as e:
            raise SendError._from_wit(e) from None

    def roster(self) -> List[str]:
        """The ids of everyone on the team, this teammate included."""
        return _mailbox.roster()

    def recv(self, timeout_ms: int) -> Optional[Message]:
        """Waits up to `timeout_ms` for the next message (e.g. a reply inside
        `on_task`); None if a wait timed out. A shutdown request or
        `tasks-available` arriving meanwhile is kept for the loop."""
        while True:
            incoming = _mailbox.recv(timeout_ms)
            if incoming is None:
                return None
            if isinstance(incoming, _mailbox.Incoming_Message):
                return incoming.value
            self._pending.append(incoming)

    def recv_where(self, timeout_ms: int, wanted: Callable[[Message], bool]) -> Optional[Message]:
        """Waits for the next message that satisfies `wanted`; every other
        message is deferred for `on_message`."""
        while True:
            msg = self.recv(timeout_ms)
            if msg is None or wanted(msg):
                return msg
            self.defer(msg)

    def defer(self, msg: Message) -> None:
        """Queues a message for `on_message` after the current handler."""
        self._pending.append(_mailbox.Incoming_Message(msg))

    def shutdown_requested(self) -> bool:
        """True if a shutdown request arrived during `recv` and waits for the
        current handler to return."""
        return any(isinstance(i, _mailbox.Incoming_Shutdown) for i in self._pending)

    # ----- workspace ---------------------------------------------------

    def read(self, path: str) -> bytes:
        """Reads a whole file (relative to the workspace root). Raises `FsError`."""
        try:
            return _workspace.read(path)
        except Err as e:
            raise FsError._from_wit(e) from None

    def read_text(self, path: str) -> str:
        """Reads a whole UTF-8 file; a file that is not UTF-8 raises
        `FsError` of kind `io` saying so."""
        data = self.read(path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FsError("io", f"{path}: not valid UTF-8 (at byte {e.start})") from None

    def write(self, path: str, contents: Union[str, bytes]) -> None:
        """Writes (creates or replaces) a file the held task owns."""
        data = contents.encode("utf-8") if isinstance(contents, str) else bytes(contents)
        try:
            _workspace.write(path, data)
        except Err as e:
            raise FsError._from_wit(e) from None

    def list(self, path: str = "") -> List[_workspace.DirEntry]:
        """Lists a directory (`""` for the root): entries with `path`,
        `is_dir` and `size`."""
        try:
            return _workspace.list_dir(path)
        except Err as e:
            raise FsError._from_wit(e) from None

    # ----- log ---------------------------------------------------------

    def log(self, level: Level, message: str) -> None:
        """Writes one log line to the team view."""
        _log.log(level, message)

    def debug(self, message: str) -> None:
        self.log(Level.DEBUG, message)

    def info(self, message: str) -> None:
        self.log(Level.INFO, message)

    def warn(self, message: str) -> None:
        self.log(Level.WARN, message)

    def error(self, message: str) -> None:
        self.log(Level.ERROR, message)

    def progress(self, done: int, total: int) -> None:
        """Reports progress on the held task: `done` of `total` steps."""
        _log.progress(done, total)

    # ----- task list ---------------------------------------------------

    def dependency_results(self, task: Task) -> List[DependencyResult]:
        """What the tasks `task` was `blocked_by` produced, in its
        `blocked_by` order: a `DependencyResult` (id, subject, summary,
        findings) each; empty for a task without dependencies. `task` must
        be the held task, else `TaskError` of kind `not-held`."""
        try:
            deps = _task_list.dependency_results(task.id)
        except Err as e:
            raise TaskError._from_wit(e) from None
        return [DependencyResult._from_wit(d) for d in deps]


class Teammate:
    """A teammate's behaviour. Subclass it and override what you need
    (usually just `on_task`). One instance lives for the whole `run`."""

    def on_task(self, ctx: Context, task: Task) -> Union[Report, Failed, str]:
        """Does one claimed task: a `Report` completes it, `Failed(reason)`
        (or a bare string, or an exception) fails it."""
        return Report(f"nothing done: this teammate does not handle tasks ({task.id})")

    def on_message(self, ctx: Context, msg: Message) -> None:
        """Handles a message from a teammate or the team lead. Ignored by default."""

    def on_shutdown(self, ctx: Context, reason: str) -> Shutdown:
        """Decides on a shutdown request. Approves by default."""
        return Shutdown()


def export(cls: type) -> type:
    """Makes the component's `run` export for teammate class `cls`: assign
    the result to `WitWorld` at the top level of the app module."""

    class WitWorld:
        def run(self, me: _types.Identity) -> None:
            err = run(cls(), me)
            if err is not None:
                raise Err(err)

    WitWorld.__qualname__ = f"WitWorld[{cls.__name__}]"
    return WitWorld


def run(teammate: Teammate, me: _types.Identity) -> Optional[str]:
    """The loop (the same as the Rust SDK's `run`). Returns an error text
    only if a task could be neither completed nor failed."""
    ctx = Context(me)
    may_claim = True
    idle = False
    while True:
        active = (not idle) or may_claim
        if ctx._pending:
            incoming = ctx._pending.popleft()
        elif active:
            incoming = _mailbox.recv(0)
        else:
            incoming = None
        if incoming is None:
            if active:
                if may_claim:
                    task = _task_list.claim()
                    if task is not None:
                        idle = False
                        err = _do_task(teammate, ctx, task)
                        if err is not None:
                            return err
                        continue
                may_claim = False
                if not idle:
                    _mailbox.idle()
                    idle = True
            incoming = _mailbox.recv(IDLE_WAIT_MS)
            if incoming is None:
                may_claim = True
                continue
        if isinstance(incoming, _mailbox.Incoming_TasksAvailable):
            may_claim = True
        elif isinstance(incoming, _mailbox.Incoming_Message):
            _guarded(ctx, "on_message", lambda: teammate.on_message(ctx, incoming.value))
        elif isinstance(incoming, _mailbox.Incoming_Shutdown):
            req = incoming.value
            answer = _guarded(ctx, "on_shutdown", lambda: teammate.on_shutdown(ctx, req.reason)) or Shutdown()
            if answer.reject is None:
                # Messages already taken from the mailbox are handled before
                # stopping: delivered means delivered.
                while ctx._pending:
                    queued = ctx._pending.popleft()
                    if isinstance(queued, _mailbox.Incoming_Message):
                        _guarded(ctx, "on_message", lambda: teammate.on_message(ctx, queued.value))
                _mailbox.respond_shutdown(req.request_id, True, None)
                return None
            _mailbox.respond_shutdown(req.request_id, False, answer.reject)


def _guarded(ctx: Context, what: str, call: Callable[[], object]) -> object:
    """Runs a handler that has no task to fail; an exception is logged."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - a handler's bug must not end the loop
        ctx.error(f"{what} raised {type(e).__name__}: {e}")
        return None


def _do_task(teammate: Teammate, ctx: Context, task: Task) -> Optional[str]:
    try:
        result = teammate.on_task(ctx, task)
    except Exception as e:  # noqa: BLE001 - fails the task, as the Rust SDK's Err does
        result = Failed(f"{type(e).__name__}: {e}")
    if isinstance(result, str):
        result = Failed(result)
    if isinstance(result, Failed):
        return _fail_task(ctx, task.id, result.reason)
    if not isinstance(result, Report):
        return _fail_task(ctx, task.id, f"on_task returned {type(result).__name__}, not Report or Failed")
    try:
        _task_list.complete_rated(task.id, result._wit())
    except Err as e:
        if isinstance(e.value, _task_list.TaskError_TooLarge):
            reason = f"report too large: over the limit of {e.value.value} bytes ({len(result.findings)} findings)"
            return _fail_task(ctx, task.id, reason)
        _not_held(ctx, task.id, e.value.value)
    return None


def _fail_task(ctx: Context, task_id: str, reason: str) -> Optional[str]:
    try:
        _task_list.fail(task_id, reason)
    except Err as e:
        if isinstance(e.value, _task_list.TaskError_NotHeld):
            _not_held(ctx, task_id, e.value.value)
            return None
        limit = e.value.value
        short = reason.encode("utf-8")[: max(0, limit - 64) // 2].decode("utf-8", "ignore")
        short = f"{short}... (reason cut to the {limit}-byte limit)"
        try:
            _task_list.fail(task_id, short)
        except Err:
            return f"task {task_id}: could not report its failure: {short}"
    return None


def _not_held(ctx: Context, task_id: str, why: str) -> None:
    ctx.warn(f"task {task_id} is no longer held by this teammate ({why}); result dropped")
