"""Browser-test fixtures: ONE seeded sandbox, ONE JupyterLab and ONE headless Chromium per test session.

Starting Lab and Chromium costs seconds on a 2-core machine, so they are session-scoped; each test gets its own
page and its own copy of the runbook (so one test's autosaved outputs never leak into the next) and its kernels are
shut down afterwards. Screenshots of every step go to screenshots/<test>/ when a test fails or when
FLEXOPS_SCREENSHOTS=1.
"""
import os
import shutil
import uuid

import pytest

import lab

SCREENSHOTS = lab.REPO / "screenshots"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the call report on the item so the fixture can tell at teardown whether the test failed, and point the
    failure report at the screenshots it will write."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
        folder = getattr(item, "screenshots_folder", None)
        if report.failed and folder is not None:
            report.sections.append(("browser screenshots", f"each step and the failure: {folder}/"))


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, installed on first use when missing. In CI a missing browser FAILS the browser tests."""
    try:
        return lab.ensure_chromium(install=True)
    except lab.ChromiumMissing as exc:
        problem = str(exc)
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {problem}", pytrace=False)
    pytest.skip(f"browser tests need Chromium: {problem}")


class SessionSandbox:
    def __init__(self, server, demo):
        from flexops.sandbox.control import SandboxControl

        self.server, self.url, self.demo = server, server.url, demo
        self.control = SandboxControl(server.url)

    def client(self):
        from flexops.client import connect, sandbox_target

        return connect(sandbox_target(url=self.url))


@pytest.fixture(scope="session")
def lab_sandbox(tmp_path_factory):
    """A freshly seeded sandbox for the whole browser session (tests assert on what they add, not on totals)."""
    server, demo = lab.start_sandbox(tmp_path_factory.mktemp("browser-sandbox") / "sandbox.db")
    yield SessionSandbox(server, demo)
    server.stop()


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory):
    """A temp copy of notebooks/ (the Lab root); the create runbook's copy defaults to interactive = True."""
    root = tmp_path_factory.mktemp("lab-root")
    return lab.copy_notebooks(root, **{lab.CREATE_NOTEBOOK: {"interactive": True}})


@pytest.fixture(scope="session")
def jupyter_lab(lab_root, lab_sandbox, tmp_path_factory):
    env = {"FLEXOPS_SANDBOX_URL": lab_sandbox.url, "FLEXOPS_SANDBOX_TOKEN": lab_sandbox.server.control_token,
           "FLEXOPS_TARGET": "sandbox"}
    server = lab.JupyterLab(lab_root, tmp_path_factory.mktemp("lab-work"), env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium, tmp_path_factory):
    with lab.Browser(tmp_path_factory.mktemp("chromium-profile")) as running:
        yield running


class Screenshots:
    """Screenshot every step; write them to screenshots/<test>/ on failure, or as they are taken on demand."""

    def __init__(self, page, folder, always):
        self.page, self.folder, self.always = page, folder, always
        self.steps = []
        if always:
            self._reset_folder()

    def _reset_folder(self):
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    def __call__(self, step):
        png = self.page.screenshot()
        self.steps.append((step, png))
        if self.always:
            self._write(len(self.steps), step, png)

    def _write(self, number, step, png):
        (self.folder / f"{number:02d}-{step}.png").write_bytes(png)

    def save_failure(self, lab_server):
        self._reset_folder()
        for number, (step, png) in enumerate(self.steps, 1):
            self._write(number, step, png)
        try:
            self._write(len(self.steps) + 1, "failure", self.page.screenshot())
        except Exception as exc:  # the page may be gone: keep what we have
            (self.folder / "failure-screenshot-error.txt").write_text(str(exc))
        (self.folder / "jupyterlab.log").write_text(lab_server.log_tail(400))
        return self.folder


@pytest.fixture
def notebook(request, browser, jupyter_lab, lab_root):
    """Open a fresh copy of a runbook in its own page: `nb = notebook("10_...ipynb")`. Yields the opener.

    The copy is named after the test so Lab starts a new kernel for it; kernels are shut down at teardown."""
    page = browser.new_page()
    request.node.screenshots_folder = SCREENSHOTS / request.node.name
    shots = Screenshots(page, request.node.screenshots_folder,
                        os.environ.get("FLEXOPS_SCREENSHOTS", "") not in ("", "0"))

    def open_notebook(name):
        copy = f"{request.node.name}-{uuid.uuid4().hex[:6]}-{name}"
        shutil.copyfile(lab_root / name, lab_root / copy)
        opened = lab.Notebook(page, jupyter_lab, copy).open()
        opened.shots = shots
        shots("opened")
        return opened

    yield open_notebook
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shots.save_failure(jupyter_lab)
    page.close()
    jupyter_lab.shutdown_kernels()
