// The checks of `js-package-json`, pure JavaScript (no host imports), so that
// `node --test` tests them natively.
//
// Rules (rule id, severity):
// - `missing-license` (warning, line of the opening brace): no `license` field.
// - `unpinned-dependency` (warning): a dependency (in `dependencies`,
//   `devDependencies`, `peerDependencies` or `optionalDependencies`) whose
//   version is `*`, `latest`, `x` or empty.
// - `curl-pipe-shell` (error): a script that pipes `curl` or `wget` into a
//   shell (`| sh`, `| bash`, `| zsh`, also with `sudo`).
// - `invalid-json` (error): the file does not parse; no other rule runs.

const DEP_FIELDS = ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"];
const UNPINNED = new Set(["*", "latest", "x", ""]);
const CURL_PIPE = /\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b/;

/** The 1-based line of the first `"key"` (as a JSON key) at or after line `from`. */
function lineOfKey(lines, key, from = 1) {
  const needle = JSON.stringify(key);
  for (let i = from - 1; i < lines.length; i++) {
    const at = lines[i].indexOf(needle);
    if (at >= 0 && /^\s*:/.test(lines[i].slice(at + needle.length))) return i + 1;
  }
  return undefined;
}

/** All findings of one `package.json`: `{ line, rule, message, severity }`, by line. */
export function check(source) {
  let pkg;
  try {
    pkg = JSON.parse(source);
  } catch (e) {
    return [{ line: 1, rule: "invalid-json", message: `does not parse: ${e.message}`, severity: "error" }];
  }
  if (pkg === null || typeof pkg !== "object" || Array.isArray(pkg)) {
    return [{ line: 1, rule: "invalid-json", message: "the top level is not an object", severity: "error" }];
  }
  const lines = source.split("\n");
  const hits = [];
  if (!("license" in pkg)) {
    const first = lines.findIndex((l) => l.includes("{"));
    hits.push({ line: first + 1, rule: "missing-license", message: "no `license` field", severity: "warning" });
  }
  for (const field of DEP_FIELDS) {
    const deps = pkg[field];
    if (deps === null || typeof deps !== "object") continue;
    const start = lineOfKey(lines, field) ?? 1;
    for (const [name, version] of Object.entries(deps)) {
      if (typeof version === "string" && UNPINNED.has(version.trim())) {
        hits.push({
          line: lineOfKey(lines, name, start),
          rule: "unpinned-dependency",
          message: `${field}.${name} is "${version}": pin a version range`,
          severity: "warning",
        });
      }
    }
  }
  const scripts = pkg.scripts;
  if (scripts !== null && typeof scripts === "object") {
    const start = lineOfKey(lines, "scripts") ?? 1;
    for (const [name, command] of Object.entries(scripts)) {
      if (typeof command === "string" && CURL_PIPE.test(command)) {
        hits.push({
          line: lineOfKey(lines, name, start),
          rule: "curl-pipe-shell",
          message: `scripts.${name} pipes a download into a shell`,
          severity: "error",
        });
      }
    }
  }
  hits.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || a.rule.localeCompare(b.rule));
  return hits;
}
