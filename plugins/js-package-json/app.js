// `js-package-json`: a teammate, written in JavaScript, that checks the
// `package.json` files its task owns for a missing `license`, dependencies
// pinned to `*` / `latest`, and scripts that pipe curl into a shell (the
// rules are in `rules.js`). Other files are skipped; a file that cannot be
// read is an `unreadable` finding, not a task failure.

import { Finding, HostError, Report, Teammate, exportTeammate } from "../../guest-sdk/js/swarm-teammate.js";
import { check } from "./rules.js";

class PackageJson extends Teammate {
  onTask(ctx, task) {
    const files = task.ownedFiles.filter((f) => f === "package.json" || f.endsWith("/package.json"));
    const findings = [];
    ctx.progress(0, files.length);
    files.forEach((path, i) => {
      try {
        for (const h of check(ctx.readText(path))) {
          findings.push(new Finding(path, h.line, h.rule, h.message, h.severity));
        }
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        findings.push(new Finding(path, undefined, "unreadable", e.message));
      }
      ctx.progress(i + 1, files.length);
    });
    return new Report(`${files.length} package.json files checked, ${findings.length} findings`, findings);
  }
}

export const run = exportTeammate(PackageJson);
