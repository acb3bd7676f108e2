"""A test teammate (tests/tests/languages.rs): its task's summary lists
what the task's dependencies produced, read with the Python SDK's
`Context.dependency_results`, so a test can check every field arrived."""

from swarm_teammate import Report, Teammate, export


class Deps(Teammate):
    def on_task(self, ctx, task):
        parts = []
        for dep in ctx.dependency_results(task):
            found = ", ".join(f"{f.rule}@{f.file}:{f.line}/{f.severity.name.lower()}" for f in dep.findings)
            parts.append(f"{dep.task_id} ({dep.subject}): {dep.summary} [{found}] +{dep.omitted_findings}")
        return Report("; ".join(parts) or "no dependencies")


WitWorld = export(Deps)
