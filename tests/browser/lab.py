"""Drive JupyterLab in Debian's headless Chromium: one set-up shared by the browser tests and tools/screenshots.py.

Why a module of its own: the tests and `make screenshots` must see the runbooks exactly the same way (same Lab
flags, same isolated Jupyter dirs, same sandbox wiring), so a docs image never shows a state the tests don't check.
Everything here is flexops-independent except `start_sandbox`, which the callers use to get a seeded sandbox.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
INSTALLER = REPO / "tools" / "install_chromium.sh"
CHROMIUM = os.environ.get("FLEXOPS_CHROMIUM", "/usr/bin/chromium")
# Playwright adds --headless itself (headless=True); the rest keeps Chromium quiet, offline and reproducible.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
KERNEL = "flexops"
CREATE_NOTEBOOK = "10_create_messenger_address.ipynb"
# Credentials from the developer's shell must never reach a kernel driven by a test: only the sandbox is allowed.
SCRUBBED_ENV = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_KEY", "TWILIO_API_SECRET", "TWILIO_PROFILE",
                "TWILIO_REGION", "TWILIO_EDGE", "FLEXOPS_RUN_DIR", "FLEXOPS_SANDBOX_DB", "JUPYTER_PATH",
                "JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN")
# Lab user settings: no news toast over the page, no update check (no network), every cell attached to the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


class ChromiumMissing(RuntimeError):
    pass


def chromium_works(path=CHROMIUM):
    if not os.access(path, os.X_OK):
        return False
    try:
        return subprocess.run([path, "--headless", "--no-sandbox", "--version"], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def ensure_chromium(install=True):
    """Return the Chromium path, installing Debian's package via tools/install_chromium.sh when it is missing."""
    if chromium_works():
        return CHROMIUM
    detail = f"{CHROMIUM} is missing or does not start"
    if install:
        done = subprocess.run(["bash", os.fspath(INSTALLER)], capture_output=True, text=True)
        if done.returncode == 0 and chromium_works():
            return CHROMIUM
        detail += f"; {INSTALLER.relative_to(REPO)} failed: {(done.stderr or done.stdout).strip()[-800:]}"
    raise ChromiumMissing(f"{detail.rstrip('.')}. Install it with `apt-get install -y chromium` (as root) or "
                          f"`bash tools/install_chromium.sh`, or point FLEXOPS_CHROMIUM at a Chromium binary.")


def ensure_kernelspec():
    """The runbooks name kernel "flexops": register it in this interpreter's prefix if `make venv` has not."""
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json"
    if spec.exists() and json.loads(spec.read_text())["argv"][0] == sys.executable:
        return spec
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                    "--display-name", "flexops (.venv)"], check=True, capture_output=True)
    return spec


def start_sandbox(db_path):
    """A seeded sandbox served from this process; returns (server, demo seed)."""
    from flexops.sandbox.control import SandboxControl
    from flexops.sandbox.server import SandboxServer

    server = SandboxServer(db_path).start()
    try:
        return server, SandboxControl(server.url).seed()
    except BaseException:
        server.stop()
        raise


def copy_notebooks(dest, **parameters_by_notebook):
    """Copy notebooks/ into dest (the Lab root, so the repo tree is never touched) and give some notebooks other
    parameter values, e.g. `copy_notebooks(d, **{"10_create_messenger_address.ipynb": {"interactive": True}})`:
    an "injected-parameters" cell after the "parameters" cell, as papermill (`flexops run -p`) adds it."""
    import nbformat

    dest = Path(dest)
    shutil.copytree(NOTEBOOKS, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name, params in parameters_by_notebook.items():
        path = dest / name
        nb = nbformat.read(path, as_version=4)
        index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ())), None)
        if index is None:
            raise ValueError(f"{name} has no cell tagged 'parameters'")
        source = "# Parameters\n" + "".join(f"{key} = {value!r}\n" for key, value in params.items())
        nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
        nbformat.write(nb, path)
    return dest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """One JupyterLab server on loopback with a random token, isolated Jupyter dirs and the sandbox in its env."""

    def __init__(self, root_dir, work_dir, env=None, startup_timeout=90):
        self.root_dir = Path(root_dir)
        self.work_dir = Path(work_dir)
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.token = os.urandom(24).hex()
        self.port = None
        self.proc = None
        self.log_path = self.work_dir / "jupyterlab.log"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def env(self):
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
                "JUPYTERLAB_SETTINGS_DIR": "lab-settings", "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces",
                "IPYTHONDIR": "ipython"}
        for name, sub in dirs.items():
            env[name] = os.fspath(self.work_dir / sub)
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        env["TWILIO_CLI_CONFIG"] = os.fspath(self.work_dir / "no-twilio-cli.json")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def _write_settings(self):
        for rel, values in LAB_SETTINGS.items():
            path = self.work_dir / "lab-settings" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self):
        ensure_kernelspec()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        self._write_settings()
        self.port = free_port()
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
               "--ServerApp.terminals_enabled=False", "--allow-root", "--LabApp.news_url=None",
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LanguageServerManager.autodetect=False", "--KernelSpecManager.ensure_native_kernel=False",
               f"--MultiKernelManager.default_kernel_name={KERNEL}"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.api("GET", "status", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method, path, timeout=30, **kwargs):
        return requests.request(method, f"{self.url}/api/{path}", timeout=timeout,
                                headers={"Authorization": f"token {self.token}"}, **kwargs)

    def lab_url(self, path):
        """URL opening `path` (relative to root_dir) in a fresh Lab workspace."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def shutdown_kernels(self):
        """Free the CPU for the next test: end every kernel this server started (via its REST API)."""
        for session in self.api("GET", "sessions").json():
            self.api("DELETE", f"sessions/{session['id']}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        # The server runs in its own process group with its kernels: end that group, which we started.
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Browser:
    """Headless Debian Chromium through Playwright (no Playwright browser download), fresh profile per run."""

    def __init__(self, profile_dir, viewport=(1400, 1000)):
        self.profile_dir = Path(profile_dir)
        self.viewport = {"width": viewport[0], "height": viewport[1]}
        self._playwright = None
        self.context = None

    def start(self):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self.context = self._playwright.chromium.launch_persistent_context(
                os.fspath(self.profile_dir), executable_path=ensure_chromium(install=False), headless=True,
                args=CHROMIUM_ARGS, viewport=self.viewport, device_scale_factor=1)
        except BaseException:
            self._playwright.stop()
            raise
        self.context.set_default_timeout(30_000)
        return self

    def new_page(self):
        return self.context.new_page()

    def stop(self):
        if self.context is not None:
            self.context.close()
        if self._playwright is not None:
            self._playwright.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _exactly(text):
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


class Notebook:
    """A notebook opened in Lab: run it the way an engineer does (menu Run ▸ Run All Cells) and find widgets."""

    def __init__(self, page, lab, path, kernel_timeout=60_000):
        self.page = page
        self.lab = lab
        self.path = path
        self.kernel_timeout = kernel_timeout

    def open(self):
        self.page.goto(self.lab.lab_url(self.path))
        self.panel = self.page.locator(".jp-NotebookPanel").filter(
            has=self.page.locator(".jp-Notebook")).first
        self.panel.wait_for(state="visible", timeout=self.kernel_timeout)
        self.wait_idle()
        return self

    def wait_idle(self, timeout=None):
        """Wait until a kernel is attached, connected and idle: the toolbar names it and its indicator says Idle
        (before the kernel connects the indicator briefly reads "idle" next to "No Kernel", hence both)."""
        self.page.wait_for_function(
            """() => {
                const name = document.querySelector('.jp-NotebookPanel .jp-KernelName');
                const state = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
                const text = name ? name.textContent.trim() : '';
                return text && text !== 'No Kernel' && state && state.dataset.status === 'idle';
            }""", timeout=timeout or self.kernel_timeout)

    def menu(self, *labels):
        """Click through the main menu, e.g. menu("Run", "Run All Cells")."""
        self.page.locator(".lm-MenuBar-itemLabel").filter(has_text=_exactly(labels[0])).first.click()
        for label in labels[1:]:
            self.page.locator(".lm-Menu-itemLabel").filter(has_text=_exactly(label)).first.click()

    def run_all(self, timeout=None):
        """Run ▸ Run All Cells, then wait until every code cell has run, or a cell failed and the rest were
        dropped (no "[*]" left and a traceback shown)."""
        self.menu("Run", "Run All Cells")
        self.page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')]
                    .map(p => p.textContent);
                if (!prompts.length || prompts.some(t => t.includes('*'))) return false;
                if (prompts.every(t => /\\[\\d+\\]/.test(t))) return true;
                return [...document.querySelectorAll('.jp-OutputArea-output')]
                    .some(o => o.textContent.includes('Traceback'));
            }""", timeout=timeout or self.kernel_timeout)
        return self

    def errors(self):
        """Tracebacks shown in the notebook's outputs (texts), if any."""
        return self.page.locator(".jp-NotebookPanel .jp-OutputArea-output").filter(
            has_text="Traceback").all_inner_texts()

    # --- ipywidgets 8 (jupyterlab_widgets 3): each control is a box whose <label> carries its description.
    def widget(self, description, kind=None):
        """The box of the widget whose description is `description` (kind: e.g. "dropdown", "radio", "text")."""
        css = f".widget-{kind}" if kind else ".jupyter-widgets"
        label = self.page.locator("label.widget-label").get_by_text(description, exact=True)
        return self.page.locator(css).filter(has=label).last

    def options(self, description):
        """A Dropdown's option labels (ipywidgets renders spaces as no-break spaces: given back as spaces)."""
        select = self.widget(description, "dropdown").locator("select")
        return [o.replace("\xa0", " ") for o in select.locator("option").all_inner_texts()]

    def select(self, description, contains):
        """Choose the first Dropdown option whose label contains `contains`; returns that label."""
        options = self.options(description)
        matches = [i for i, o in enumerate(options) if contains in o]
        if not matches:
            raise AssertionError(f"{description!r}: no option contains {contains!r}; options: {options}")
        self.widget(description, "dropdown").locator("select").select_option(index=matches[0])
        return options[matches[0]]

    def suggestions(self, description):
        """What a Combobox offers (its <datalist> options), in order."""
        return self.widget(description, "text").locator("datalist option").evaluate_all(
            "options => options.map(o => o.value)")

    def pick(self, description, contains):
        """Choose the first Combobox suggestion containing `contains`: the field gets that text, as when it is
        picked from the browser's list; returns it."""
        offered = self.suggestions(description)
        matches = [o for o in offered if contains in o]
        if not matches:
            raise AssertionError(f"{description!r}: no suggestion contains {contains!r}; offered: {offered}")
        self.fill(description, matches[0])
        return matches[0]

    def field_value(self, description):
        """The text now in a text-like widget's input."""
        return self.widget(description).locator("input, textarea").first.input_value()

    def choose(self, description, option):
        """Click a RadioButtons option."""
        self.widget(description, "radio").get_by_label(option, exact=True).check()

    def fill(self, description, value):
        """Type into a text-like widget (Text, IntText, BoundedIntText, Textarea, Combobox), then leave it."""
        box = self.widget(description)
        field = box.locator("input, textarea").first
        field.fill(str(value))
        field.press("Tab")

    def button(self, css_class=None, text=None):
        if css_class:
            return self.page.locator(f"button.{css_class}").last
        return self.page.locator("button.jupyter-button").get_by_text(text, exact=True).last

    def append_to_cell(self, index, line):
        """Type a line at the end of the index-th code cell, as an engineer editing the parameters cell would."""
        editor = self.page.locator(".jp-Notebook .jp-CodeCell").nth(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+End")
        self.page.keyboard.press("Enter")
        self.page.keyboard.insert_text(line)
        self.page.keyboard.press("Escape")  # back to command mode


class CreateForm:
    """flexops.ui.CreateForm (runbook 10 with interactive = True) as the browser shows it.

    Inputs are found by their visible descriptions, buttons and result areas by their `flexops-*` classes."""

    def __init__(self, notebook):
        self.nb = notebook
        self.page = notebook.page
        self.root = self.page.locator(".flexops-create-form").last
        self.message = self.root.locator(".flexops-message")
        self.output = self.root.locator(".flexops-output")
        self.confirm_box = self.root.locator(".flexops-confirm-box")

    def wait(self):
        self.root.locator("button.flexops-plan").wait_for(state="visible")
        self.root.scroll_into_view_if_needed()
        return self

    def button(self, name):
        return self.root.locator(f"button.flexops-{name}")

    def fill(self, page_id, flow_name, retry_count):
        """Pick the page and the Studio flow by what their labels contain; returns the chosen labels."""
        page = self.nb.pick("Facebook Page", page_id)
        self.nb.choose("Integration", "studio")
        flow = self.nb.select("Studio flow", flow_name)
        self.nb.fill("Retry count", retry_count)
        return page, flow

    def _click_and_wait_for_output(self, name, *texts):
        """Click a button, wait until the output area shows every text (results arrive piece by piece)."""
        self.button(name).click()
        shown = self.output
        for text in texts:
            shown = shown.filter(has_text=text)
        shown.wait_for()
        return shown.inner_text()

    def plan(self, address):
        """Plan (dry run); returns the plan (summary line and field table) once shown."""
        return self._click_and_wait_for_output("plan", f"{address}:", "desired")

    def create(self):
        """Create: returns the confirmation question once the Confirm / Cancel box shows."""
        self.button("create").click()
        self.confirm_box.wait_for(state="visible")
        return self.confirm_box.inner_text()

    def confirm(self, address):
        """Confirm: returns the output once it shows the change, the stored configuration and the checks."""
        return self._click_and_wait_for_output("confirm", f"{address}: created", f"Stored configuration of {address}",
                                               "Checks")

    def message_text(self):
        return self.message.inner_text().strip()
