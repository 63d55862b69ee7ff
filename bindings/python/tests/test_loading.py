from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from tasker import _native

from ._util import run_python


class LoadingTest(unittest.TestCase):
    def test_import_does_not_load_the_library(self) -> None:
        res = run_python(textwrap.dedent(
            """
            import tasker
            maps = open("/proc/self/maps").read()
            print(tasker.is_loaded(), "libtasker" in maps)
            ch = tasker.Channel()
            maps = open("/proc/self/maps").read()
            print(tasker.is_loaded(), "libtasker" in maps)
            ch.close()
            """))
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split("\n")[:2], ["False False", "True True"])

    @unittest.skipUnless(os.path.exists(_native.REPO_LIBRARY), "build/libtasker.so not built")
    def test_default_lookup_finds_the_repository_build(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "TASKER_LIBRARY"}
        res = run_python(textwrap.dedent(
            """
            import tasker
            print(tasker.library_path())
            with tasker.Channel() as ch:
                ch.dispatch("h"); print(ch.poll(1.0).handler)
            """), env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.split(), [_native.REPO_LIBRARY, "h"])

    def test_tasker_library_env_var_is_used(self) -> None:
        env = dict(os.environ, TASKER_LIBRARY="/nonexistent/libtasker.so")
        res = run_python(textwrap.dedent(
            """
            import tasker
            try:
                tasker.Channel()
            except tasker.LibraryError as e:
                print("LibraryError", e)
            """), env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("LibraryError", res.stdout)
        self.assertIn("/nonexistent/libtasker.so", res.stdout)

    @unittest.skipUnless(shutil.which("gcc") or shutil.which("cc"), "no C compiler")
    def test_abi_mismatch_is_refused_with_both_versions(self) -> None:
        cc = shutil.which("gcc") or shutil.which("cc")
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "fake.c")
            so = os.path.join(d, "libtasker.so")
            with open(src, "w") as f:
                f.write("unsigned tasker_abi_version(void) { return 2; }\n")
            subprocess.run([cc, "-shared", "-fPIC", "-o", so, src], check=True, capture_output=True)
            env = dict(os.environ, TASKER_LIBRARY=so)
            res = run_python(textwrap.dedent(
                """
                import tasker
                try:
                    tasker.Channel()
                except tasker.LibraryError as e:
                    print(e)
                print(tasker.is_loaded())
                """), env=env)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("ABI version 2", res.stdout)
        self.assertIn("ABI version 1", res.stdout)
        self.assertTrue(res.stdout.strip().endswith("False"))


if __name__ == "__main__":
    unittest.main()
