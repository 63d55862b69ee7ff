from __future__ import annotations

import os
import re
import unittest

from ._util import PKG_ROOT, run_python

README = os.path.join(PKG_ROOT, "README.md")


class ReadmeTest(unittest.TestCase):
    def test_example_runs_as_written(self) -> None:
        with open(README) as f:
            text = f.read()
        blocks = re.findall(r"```python\n(.*?)```", text, re.S)
        self.assertTrue(blocks, "no python example in README.md")
        example = blocks[0]
        self.assertLessEqual(len(example.strip().splitlines()), 16)
        expected = re.search(r"prints\n\n```\n(.*?)```", text, re.S)
        res = run_python(example, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        if expected:
            self.assertEqual(res.stdout, expected.group(1))

    def test_top_level_readme_shows_the_tested_examples(self) -> None:
        # README.md at the repository root repeats the Python and Ruby examples; the
        # binding suites run them, so the copies must stay identical.
        top_path = os.path.join(PKG_ROOT, "..", "..", "README.md")
        with open(top_path) as f:
            top = f.read()
        for path, lang in ((README, "python"), (os.path.join(PKG_ROOT, "..", "ruby", "README.md"), "ruby")):
            with open(path) as f:
                block = re.search(rf"```{lang}\n(.*?)```", f.read(), re.S)
            self.assertIsNotNone(block)
            self.assertIn(block.group(1), top, f"README.md's {lang} example differs from {path}")


if __name__ == "__main__":
    unittest.main()
