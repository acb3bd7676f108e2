"""Native tests of py-lint's rules: `python3 -m unittest` in this directory."""

import unittest

from py_lint_rules import Hit, check, is_script


class RulesTest(unittest.TestCase):
    def test_each_rule_with_its_line(self):
        src = "import os\n\ntry:\n    os.remove('x')\nexcept:\n    print('gone')\n"
        self.assertEqual(
            [(h.line, h.rule, h.severity) for h in check("lib/a.py", src)],
            [(1, "missing-docstring", "warning"), (5, "bare-except", "warning"), (6, "print-call", "note")],
        )

    def test_scripts_and_main_guards_may_print(self):
        guarded = '"""Doc."""\nif __name__ == "__main__":\n    print(1)\n'
        self.assertEqual(check("lib/cli.py", guarded), [])
        self.assertEqual(check("lib/__main__.py", '"""Doc."""\nprint(1)\n'), [])
        self.assertTrue(is_script("tests/test_x.py") and is_script("x_test.py"))
        self.assertFalse(is_script("lib/testing.py"))

    def test_a_named_except_and_a_method_print_are_told_apart(self):
        src = '"""Doc."""\ntry:\n    pass\nexcept OSError:\n    pass\nlog.print("x")\n'
        self.assertEqual(check("a.py", src), [])

    def test_a_syntax_error_is_the_only_finding(self):
        self.assertEqual(check("a.py", "def (:\n"), [Hit(1, "syntax-error", "does not parse: invalid syntax", "error")])


if __name__ == "__main__":
    unittest.main()
