"""`py-lint`: a teammate, written in Python, that checks the Python files its
task owns for a missing module docstring, bare `except:` and `print(` left in
library code (the rules are in `py_lint_rules.py`).

Files not ending in `.py` are skipped; a file that cannot be read or is not
UTF-8 is an `unreadable` finding, not a task failure.
"""

from swarm_teammate import Finding, FsError, Report, Severity, Teammate, export

import py_lint_rules

SEVERITY = {"note": Severity.NOTE, "warning": Severity.WARNING, "error": Severity.ERROR}


class PyLint(Teammate):
    def on_task(self, ctx, task):
        files = [f for f in task.owned_files if f.endswith(".py")]
        findings = []
        ctx.progress(0, len(files))
        for i, path in enumerate(files):
            try:
                hits = py_lint_rules.check(path, ctx.read_text(path))
            except FsError as e:
                findings.append(Finding(path, None, "unreadable", e.describe()))
                hits = []
            for h in hits:
                findings.append(Finding(path, h.line, h.rule, h.message, SEVERITY[h.severity]))
            ctx.progress(i + 1, len(files))
        return Report(f"{len(files)} Python files checked, {len(findings)} findings", findings)


WitWorld = export(PyLint)
