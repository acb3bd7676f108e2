// Native tests of js-package-json's rules: `node --test` in this directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { check } from "./rules.js";

const brief = (hits) => hits.map((h) => `${h.line} ${h.rule} ${h.severity}`);

test("each rule with its line", () => {
  const src = '{\n  "name": "x",\n  "dependencies": {\n    "a": "*",\n    "b": "^1.0.0"\n  },\n  "scripts": {\n    "i": "curl -s https://x | bash"\n  }\n}\n';
  assert.deepEqual(brief(check(src)), ["1 missing-license warning", "4 unpinned-dependency warning", "8 curl-pipe-shell error"]);
});

test("a pinned, licensed package with a harmless curl is clean", () => {
  const src = '{ "license": "MIT", "dependencies": { "a": "1.2.3" }, "scripts": { "get": "curl -o f https://x" } }';
  assert.deepEqual(check(src), []);
});

test("invalid JSON is the only finding", () => {
  assert.deepEqual(brief(check('{ "name": ')), ["1 invalid-json error"]);
  assert.deepEqual(brief(check("[1, 2]")), ["1 invalid-json error"]);
});
