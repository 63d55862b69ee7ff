"""The README's asyncio example runs as written and prints what the README says."""

from __future__ import annotations

import os
import re
import unittest

from ._util import PKG_ROOT, run_python


class ReadmeAsyncioTest(unittest.TestCase):
    def test_asyncio_example_runs_as_written(self) -> None:
        with open(os.path.join(PKG_ROOT, "README.md")) as f:
            text = f.read()
        section = text.split("\n## asyncio\n", 1)[1]
        example = re.search(r"```python\n(.*?)```", section, re.S)
        expected = re.search(r"prints\n\n```\n(.*?)```", section, re.S)
        self.assertIsNotNone(example, "README.md has an asyncio example")
        self.assertIsNotNone(expected)
        assert example is not None and expected is not None
        self.assertIn("AsyncWorker", example.group(1))
        res = run_python(example.group(1), timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout, expected.group(1))


if __name__ == "__main__":
    unittest.main()
