"""Set-up and CI: `.ci/run` fails when no test ran, and notebooks run with this environment's kernel."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flexops import runs

ROOT = Path(__file__).resolve().parents[1]


def ci_run(tmp_path, makefile):
    """Run a copy of .ci/run in a folder whose Makefile's `test` target is `makefile`."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "Makefile").write_text(f"test:\n\t{makefile}\n")
    return subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PY_COLORS": "1"})


def pytest_on(tmp_path, source):
    tests = tmp_path / "suite"
    tests.mkdir()
    if source is not None:
        (tests / "test_it.py").write_text(source)
    return f"{sys.executable} -m pytest -p no:cacheprovider -c /dev/null --rootdir {tests} {tests}"


@pytest.mark.parametrize("source, passes", [
    ("def test_ok():\n    pass\n", True),
    (None, False),  # nothing collected: pytest exits 5, so make fails
    ("import pytest\n\n@pytest.mark.skip\ndef test_later():\n    pass\n", False),  # ran, but nothing passed
    ("def test_ok():\n    pass\n\ndef test_bad():\n    assert False\n", False),
])
@pytest.mark.slow  # starts a process
def test_ci_run_fails_unless_a_test_passed_and_none_failed(tmp_path, source, passes):
    done = ci_run(tmp_path, pytest_on(tmp_path, source))
    assert (done.returncode == 0) is passes, done.stdout + done.stderr
    if source is None:
        assert "no tests ran" in done.stdout and "make test failed" in done.stderr


@pytest.mark.slow  # starts a process
def test_ci_run_does_not_take_other_output_for_a_pytest_summary(tmp_path):
    done = ci_run(tmp_path, "@echo 'preflight: 5 passed, 0 failed'")
    assert done.returncode == 1 and "no passed test" in done.stderr


def test_a_flexops_kernelspec_of_another_environment_is_not_used(tmp_path, monkeypatch):
    """Jupyter looks in JUPYTER_PATH and the user's folder before this environment: a `flexops` spec found there
    that starts another Python must not run our notebooks."""
    other_python = tmp_path / "elsewhere" / ".venv" / "bin" / "python"
    other_python.parent.mkdir(parents=True)
    other_python.touch()  # it exists; it is just not ours
    spec = tmp_path / "kernels" / "flexops"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(other_python), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "stale", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setattr(runs, "_kernel_cache", {})
    assert runs.ensure_kernel() == "python3"
    monkeypatch.delenv("JUPYTER_PATH")
    monkeypatch.setattr(runs, "_kernel_cache", {})
    assert runs.ensure_kernel() == "flexops"  # this environment's own, as `make` registers it

