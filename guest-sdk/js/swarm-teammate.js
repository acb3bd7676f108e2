// Write swarm-host teammates in JavaScript.
//
// A teammate is a WebAssembly component implementing the world `teammate` of
// the WIT package `swarm:teammate` (`wit/teammate.wit`); `componentize-js`
// (through `jco componentize`) turns an ES module into one. This module hides
// the imports behind one class, `Teammate`, whose handlers all have defaults,
// and one function, `exportTeammate`. The SDK owns the loop, exactly like the
// Rust SDK (`guest-sdk/src/lib.rs`): it drains the mailbox, claims tasks,
// reports results, answers shutdown requests and, when there is nothing to
// do, tells the team lead it is idle and waits in the host (suspended, no
// polling) for the next message.
//
// Example (`app.js`):
//
//   import { Teammate, Report, Finding, exportTeammate } from "swarm-teammate";
//
//   class LongLines extends Teammate {
//     onTask(ctx, task) {
//       const findings = [];
//       task.ownedFiles.forEach((path, i) => {
//         ctx.readText(path).split("\n").forEach((line, n) => {
//           if (line.length > 100) findings.push(new Finding(path, n + 1, "long-line", "over 100 chars"));
//         });
//         ctx.progress(i + 1, task.ownedFiles.length);
//       });
//       return new Report(`${findings.length} long lines`, findings);
//     }
//   }
//
//   export const run = exportTeammate(LongLines);
//
// A handler that throws fails the held task with the error's message; so
// does returning `new Failed("why")` from `onTask`.

import * as log from "swarm:teammate/log@0.1.2";
import * as mailbox from "swarm:teammate/mailbox@0.1.2";
import * as taskList from "swarm:teammate/task-list@0.1.2";
import * as workspace from "swarm:teammate/workspace@0.1.2";

/** The sender id of the team lead (the coordinator). */
export const TEAM_LEAD = "team-lead";

/** How long (ms) the idle loop waits in `mailbox.recv`: no timeout. */
export const IDLE_WAIT_MS = 0xffffffff;

/** Severities: how much a finding matters. */
export const Severity = Object.freeze({ NOTE: "note", WARNING: "warning", ERROR: "error" });

/** One thing a teammate found (`line` is 1-based, or undefined for the whole file). */
export class Finding {
  constructor(file, line, rule, message, severity = Severity.WARNING) {
    this.file = file;
    this.line = line ?? undefined;
    this.rule = rule;
    this.message = message;
    this.severity = severity;
  }
}

/** The result of a completed task: a one-line summary and findings. */
export class Report {
  constructor(summary, findings = []) {
    this.summary = summary;
    this.findings = [...findings];
  }
  push(finding) {
    this.findings.push(finding);
  }
}

/** What a task the held task was `blocked_by` produced (WIT
 * `dependency-result`): its `taskId`, `subject` and report `summary`, its
 * `findings` (Finding objects; the first ones, within the host's budget of
 * 64 KiB of text for all dependencies of a claim) and `omittedFindings`, how
 * many were left out for that budget. */
export class DependencyResult {
  constructor(taskId, subject, summary, findings = [], omittedFindings = 0) {
    this.taskId = taskId;
    this.subject = subject;
    this.summary = summary;
    this.findings = [...findings];
    this.omittedFindings = omittedFindings;
  }
  static fromWit(dep) {
    const findings = dep.findings.map((f) => new Finding(f.file, f.line, f.rule, f.message, f.severity));
    return new DependencyResult(dep.taskId, dep.subject, dep.summary, findings, dep.omittedFindings);
  }
}

/** Returned by `onTask` to fail the task with `reason`. */
export class Failed {
  constructor(reason) {
    this.reason = reason;
  }
}

/** The answer to a shutdown request: `Shutdown.approve()` or `Shutdown.reject(why)`. */
export class Shutdown {
  constructor(reject) {
    this.reject = reject;
  }
  static approve() {
    return new Shutdown(undefined);
  }
  static reject(reason) {
    return new Shutdown(String(reason));
  }
}

/** A refused workspace or mailbox call: `kind` is the WIT variant's case
 * (`denied`, `not-found`, `unknown-recipient`, ...), `detail` its payload. */
export class HostError extends Error {
  constructor(kind, detail) {
    super(describe(kind, detail));
    this.kind = kind;
    this.detail = detail;
  }
}

function describe(kind, detail) {
  if (kind === "too-large") return `too large: over the limit of ${detail} bytes`;
  if (kind === "io") return `I/O error: ${detail}`;
  return `${kind.replace(/-/g, " ")}: ${detail}`;
}

/** Calls an import whose WIT result has an error variant; throws HostError. */
function checked(call) {
  try {
    return call();
  } catch (e) {
    const payload = e && e.payload;
    if (payload && typeof payload.tag === "string") throw new HostError(payload.tag, payload.val);
    throw e;
  }
}

/** What a handler can do: who it is, the mailbox, the workspace, the log and
 * what the held task's dependencies produced. */
export class Context {
  constructor(me) {
    this.id = me.id;
    this.team = me.team;
    this.color = me.color;
    this._pending = [];
  }

  // ----- mailbox -----
  send(to, body, summary) {
    checked(() => mailbox.send(to, body, summary));
  }
  reply(msg, body) {
    this.send(msg.sender, body);
  }
  broadcast(body, summary) {
    checked(() => mailbox.broadcast(body, summary));
  }
  roster() {
    return mailbox.roster();
  }
  /** Waits up to `timeoutMs` for the next message; undefined on timeout.
   * A shutdown request or `tasks-available` meanwhile is kept for the loop. */
  recv(timeoutMs) {
    for (;;) {
      const incoming = mailbox.recv(timeoutMs);
      if (incoming === undefined) return undefined;
      if (incoming.tag === "message") return incoming.val;
      this._pending.push(incoming);
    }
  }
  /** Waits for the next message satisfying `wanted`; others are deferred. */
  recvWhere(timeoutMs, wanted) {
    for (;;) {
      const msg = this.recv(timeoutMs);
      if (msg === undefined || wanted(msg)) return msg;
      this.defer(msg);
    }
  }
  defer(msg) {
    this._pending.push({ tag: "message", val: msg });
  }
  shutdownRequested() {
    return this._pending.some((i) => i.tag === "shutdown");
  }

  // ----- workspace -----
  /** Reads a whole file as bytes (Uint8Array). Throws HostError. */
  read(path) {
    return checked(() => workspace.read(path));
  }
  /** Reads a whole UTF-8 file; a file that is not UTF-8 throws HostError `io`. */
  readText(path) {
    const bytes = this.read(path);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new HostError("io", `${path}: not valid UTF-8`);
    }
  }
  /** Writes (creates or replaces) a file the held task owns. */
  write(path, contents) {
    const bytes = typeof contents === "string" ? new TextEncoder().encode(contents) : contents;
    checked(() => workspace.write(path, bytes));
  }
  /** Lists a directory (`""` for the root): `{ path, isDir, size }`. */
  list(path = "") {
    return checked(() => workspace.listDir(path));
  }

  // ----- log -----
  log(level, message) {
    log.log(level, message);
  }
  debug(message) {
    log.log("debug", message);
  }
  info(message) {
    log.log("info", message);
  }
  warn(message) {
    log.log("warn", message);
  }
  error(message) {
    log.log("error", message);
  }
  progress(done, total) {
    log.progress(done, total);
  }

  // ----- task list -----
  /** What the tasks `task` was `blocked_by` produced, in its `blocked_by`
   * order: a DependencyResult (id, subject, summary, findings) each; empty
   * for a task without dependencies. `task` must be the held task, else
   * HostError `not-held`. */
  dependencyResults(task) {
    return checked(() => taskList.dependencyResults(task.id)).map((d) => DependencyResult.fromWit(d));
  }
}

/** A teammate's behaviour: extend it and override what you need. */
export class Teammate {
  /** Does one claimed task: a Report completes it, Failed (or a throw) fails it. */
  onTask(ctx, task) {
    return new Report(`nothing done: this teammate does not handle tasks (${task.id})`);
  }
  /** Handles a message; ignored by default. */
  onMessage(ctx, msg) {}
  /** Decides on a shutdown request; approves by default. */
  onShutdown(ctx, reason) {
    return Shutdown.approve();
  }
}

/** The component's `run` export for teammate class `cls`:
 * `export const run = exportTeammate(MyTeammate);`. */
export function exportTeammate(cls) {
  return (me) => {
    const err = runLoop(new cls(), me);
    if (err !== undefined) throw err;
  };
}

function guarded(ctx, what, call) {
  try {
    return call();
  } catch (e) {
    ctx.error(`${what} threw: ${e && e.message ? e.message : e}`);
    return undefined;
  }
}

/** The loop (the same as the Rust SDK's `run`). Returns an error text only
 * if a task could be neither completed nor failed. */
export function runLoop(teammate, me) {
  const ctx = new Context(me);
  let mayClaim = true;
  let idle = false;
  for (;;) {
    const active = !idle || mayClaim;
    let incoming;
    if (ctx._pending.length > 0) incoming = ctx._pending.shift();
    else if (active) incoming = mailbox.recv(0);
    if (incoming === undefined) {
      if (active) {
        if (mayClaim) {
          const task = taskList.claim();
          if (task !== undefined) {
            idle = false;
            const err = doTask(teammate, ctx, task);
            if (err !== undefined) return err;
            continue;
          }
        }
        mayClaim = false;
        if (!idle) {
          mailbox.idle();
          idle = true;
        }
      }
      incoming = mailbox.recv(IDLE_WAIT_MS);
      if (incoming === undefined) {
        mayClaim = true;
        continue;
      }
    }
    if (incoming.tag === "tasks-available") {
      mayClaim = true;
    } else if (incoming.tag === "message") {
      guarded(ctx, "onMessage", () => teammate.onMessage(ctx, incoming.val));
    } else if (incoming.tag === "shutdown") {
      const req = incoming.val;
      const answer = guarded(ctx, "onShutdown", () => teammate.onShutdown(ctx, req.reason)) ?? Shutdown.approve();
      if (answer.reject === undefined) {
        // Messages already taken from the mailbox are handled before stopping.
        while (ctx._pending.length > 0) {
          const queued = ctx._pending.shift();
          if (queued.tag === "message") guarded(ctx, "onMessage", () => teammate.onMessage(ctx, queued.val));
        }
        mailbox.respondShutdown(req.requestId, true, undefined);
        return undefined;
      }
      mailbox.respondShutdown(req.requestId, false, answer.reject);
    }
  }
}

function doTask(teammate, ctx, task) {
  let result;
  try {
    result = teammate.onTask(ctx, task);
  } catch (e) {
    result = new Failed(e && e.message ? e.message : String(e));
  }
  if (typeof result === "string") result = new Failed(result);
  if (result instanceof Failed) return failTask(ctx, task.id, result.reason);
  if (!(result instanceof Report)) return failTask(ctx, task.id, "onTask returned neither a Report nor a Failed");
  const report = {
    summary: result.summary,
    findings: result.findings.map((f) => ({
      file: f.file,
      line: f.line,
      rule: f.rule,
      message: f.message,
      severity: f.severity,
    })),
  };
  try {
    checked(() => taskList.completeRated(task.id, report));
  } catch (e) {
    if (e instanceof HostError && e.kind === "too-large") {
      return failTask(ctx, task.id, `report too large: over the limit of ${e.detail} bytes (${report.findings.length} findings)`);
    }
    if (e instanceof HostError) notHeld(ctx, task.id, e.detail);
    else throw e;
  }
  return undefined;
}

function failTask(ctx, taskId, reason) {
  try {
    checked(() => taskList.fail(taskId, reason));
  } catch (e) {
    if (!(e instanceof HostError)) throw e;
    if (e.kind === "not-held") {
      notHeld(ctx, taskId, e.detail);
      return undefined;
    }
    const short = `${reason.slice(0, Math.max(0, e.detail - 64) >> 2)}... (reason cut to the ${e.detail}-byte limit)`;
    try {
      checked(() => taskList.fail(taskId, short));
    } catch {
      return `task ${taskId}: could not report its failure: ${short}`;
    }
  }
  return undefined;
}

function notHeld(ctx, taskId, why) {
  ctx.warn(`task ${taskId} is no longer held by this teammate (${why}); result dropped`);
}
