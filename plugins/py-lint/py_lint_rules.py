"""The checks of `py-lint`, pure Python (no imports of the host), so that
`python3 -m unittest` tests them natively.

Rules (rule id, severity):

- `missing-docstring` (warning, line 1): the module has no docstring.
- `bare-except` (warning): an `except:` with no exception type, which also
  catches `KeyboardInterrupt` and `SystemExit`.
- `print-call` (note): `print(` left in library code. Scripts are exempt:
  `__main__.py`, test files (`test_*.py`, `*_test.py`, `conftest.py`) and the
  body of `if __name__ == "__main__":`.
- `syntax-error` (error): the file does not parse; no other rule runs on it.
"""

import ast
from typing import List, NamedTuple, Optional


class Hit(NamedTuple):
    """One finding: 1-based line (None for the whole file), rule, message,
    severity name (`note`, `warning` or `error`)."""

    line: Optional[int]
    rule: str
    message: str
    severity: str


def is_script(path: str) -> bool:
    """Files where `print` is the point: entry points and tests."""
    name = path.rsplit("/", 1)[-1]
    return (
        name in ("__main__.py", "conftest.py")
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


def _is_main_guard(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def check(path: str, source: str) -> List[Hit]:
    """All findings of one file, sorted by line then rule."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        return [Hit(e.lineno or 1, "syntax-error", f"does not parse: {e.msg}", "error")]

    hits: List[Hit] = []
    if ast.get_docstring(tree) is None:
        hits.append(Hit(1, "missing-docstring", "module has no docstring", "warning"))

    script = is_script(path)
    skip = set()
    for node in tree.body:
        if _is_main_guard(node):
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is None:
            hits.append(
                Hit(node.lineno, "bare-except", "bare `except:` also catches KeyboardInterrupt and SystemExit; name the exception", "warning")
            )
        elif (
            not script
            and id(node) not in skip
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
        ):
            hits.append(Hit(node.lineno, "print-call", "`print(` left in library code; use logging", "note"))

    hits.sort(key=lambda h: (h.line or 0, h.rule))
    return hits
