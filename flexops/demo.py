"""`flexops demo`: the whole runbook sequence, headless, on a fresh local sandbox, in well under a minute.

00 connect -> 10 create a Messenger address (Studio, retry 3) -> a customer's first message (simulated through
the sandbox control plane) -> 20 verify -> an agent accepts the task -> 50 trace (reached an agent) -> the task
ends and the customer writes again, so a stale conversation swallows it -> 50 trace (broken on purpose, at the
conversation) -> 60 janitor closes it -> the workflow is made facebook-only -> 50 trace (broken at flex) -> 70
routing fix -> 50 trace (healthy) -> a legacy Flex Flow still holds a second Page -> 50 trace (broken at the
address) -> 70 legacy retire (its verify traces the Page) -> 50 trace (healthy) -> 30 inventory report -> 10 again
with the same parameters, which changes nothing. The notebooks run for real (papermill, kernel "flexops") against
a sandbox server started for the demo on `<out_dir>/sandbox.db`; kernels find it through FLEXOPS_SANDBOX_URL. Each
step gets its own folder (executed notebook + results.json) under `out_dir`, outside the source tree's notebooks/.
"""
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from papermill import PapermillExecutionError

from . import run_folder
from .atomic import read_json
from .exceptions import FlexopsError
from .runs import KERNEL, KERNEL_ARGS, ensure_kernel, execute_notebook

DEFAULT_OUT = Path("out") / "demo"
DEMO_SENDER = "6283749201837465"  # a page-scoped Messenger user ID
DEMO_TEXT = "Hi! Is my order on its way?"


def notebooks_dir():
    """The runbooks: FLEXOPS_NOTEBOOKS, else notebooks/ next to the package (a source checkout), else ./notebooks."""
    for candidate in (os.environ.get("FLEXOPS_NOTEBOOKS"), Path(__file__).resolve().parent.parent / "notebooks",
                      Path.cwd() / "notebooks"):
        if candidate and (Path(candidate) / "00_connect.ipynb").exists():
            return Path(candidate)
    raise FlexopsError("cannot find the runbooks (notebooks/00_connect.ipynb): run from the flexops checkout or "
                       "set FLEXOPS_NOTEBOOKS")


def kernel_name(preferred=KERNEL):
    """The `flexops` kernelspec of this environment (`make` registers it), else this interpreter's python3 kernel."""
    return ensure_kernel(preferred)


@contextmanager
def environment(**values):
    """Set (or with None, unset) environment variables for kernels started inside the block; restore after."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = str(value)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(notebook, folder, parameters, kernel=None, progress_bar=False, may_fail=False):
    """Run one runbook (runs.execute_notebook) into `folder` (results.json lands there too); returns its results.
    `may_fail`: a runbook that ends non-zero on purpose (a broken trace) still returns what it recorded."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    output = folder / Path(notebook).name
    try:
        execute_notebook(notebook, output, parameters, kernel or kernel_name(), progress_bar=progress_bar,
                         env={run_folder.RUN_DIR_ENV: os.fspath(folder.resolve())}, extra_arguments=KERNEL_ARGS)
    except PapermillExecutionError as exc:
        if may_fail and exc.ename == "CheckFailed":
            return output, read_json(folder / run_folder.RESULTS, {})
        raise FlexopsError(f"{Path(notebook).name} failed: {exc.ename}: {exc.evalue} (see {output})") from None
    return output, read_json(folder / run_folder.RESULTS, {})


@dataclass
class Step:
    name: str
    summary: str
    notebook: Path = None  # the executed notebook, when the step ran one
    results: dict = field(default_factory=dict)
    seconds: float = 0.0


def _checks_line(results):
    s = results.get("summary") or {}
    return f"{s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('warnings', 0)} warnings"


def _trace_line(results):
    trace = results.get("trace") or {}
    broken = f" at {trace['broken_hop']}" if trace.get("broken_hop") else ""
    return f"trace: {trace.get('verdict')}{broken}"


def accept_as_agent(sandbox_url, task_sid):
    """What an agent does in Flex, through the TaskRouter API: go Available, accept the offered reservation."""
    from .client import connect, sandbox_target

    client = connect(sandbox_target(url=sandbox_url))
    workspace = client.taskrouter.v1.workspaces(client.flex_api.v1.configuration().fetch().taskrouter_workspace_sid)
    available = next(a.sid for a in workspace.activities.list() if a.available)
    worker = workspace.workers.list()[0]
    workspace.workers(worker.sid).update(activity_sid=available)
    reservation = next(r for r in workspace.tasks(task_sid).reservations.list() if r.reservation_status == "pending")
    workspace.tasks(task_sid).reservations(reservation.sid).update(reservation_status="accepted")
    return worker.friendly_name


def break_on_purpose(sandbox_url, control, page_id, task_sid):
    """The classic failure: the task ends but the conversation stays active, and the customer writes again."""
    from .client import connect, sandbox_target

    client = connect(sandbox_target(url=sandbox_url))
    workspace = client.taskrouter.v1.workspaces(client.flex_api.v1.configuration().fetch().taskrouter_workspace_sid)
    workspace.tasks(task_sid).update(assignment_status="wrapping")
    workspace.tasks(task_sid).update(assignment_status="completed", reason="agent finished")
    reply = control.simulate_inbound(page_id, DEMO_SENDER, "Hello? Anyone there?")
    return (f"task completed, conversation {reply['conversation_sid']} left active; the customer's next message "
            "lands in it and no agent sees it")


def facebook_only_routing(sandbox_url):
    """A routing breakage of real migrations: the workflow's filter still says the legacy channel type."""
    import json

    from .client import connect, sandbox_target

    client = connect(sandbox_target(url=sandbox_url))
    space = client.taskrouter.v1.workspaces(client.flex_api.v1.configuration().fetch().taskrouter_workspace_sid)
    workflow, queue = space.workflows.list()[0], space.task_queues.list()[0].sid
    space.workflows(workflow.sid).update(configuration=json.dumps({"task_routing": {"filters": [{
        "filter_friendly_name": "Messenger", "expression": "channelType == 'facebook'",
        "targets": [{"queue": queue}]}]}}))
    return f"workflow '{workflow.friendly_name}' now routes only channelType == 'facebook'"


def legacy_flow_holds_the_page(sandbox_url, page_id):
    """A migration left half done on a second Page: its Conversations address was created, but the legacy Flex
    Flow (channel type facebook, enabled) still holds the Page and takes its messages."""
    from . import addresses
    from .address_spec import MessengerAddress
    from .client import connect, sandbox_target

    client = connect(sandbox_target(url=sandbox_url))
    flex = client.flex_api.v1.configuration().fetch()
    flow = next(f for f in client.studio.v2.flows.list() if f.status == "published")
    addresses.create(client, MessengerAddress.from_params(page_id=page_id, integration="studio",
                                                          studio_flow_sid=flow.sid, retry_count=3))
    made = client.flex_api.v1.flex_flow.create(
        friendly_name="Messenger (Flex UI 1.x)", chat_service_sid=flex.chat_service_instance_sid,
        channel_type="facebook", contact_identity=f"messenger:{page_id}", integration_type="studio",
        integration_flow_sid=flow.sid, enabled=True)
    return f"messenger:{page_id} has its address, but legacy Flex Flow {made.sid} (facebook) still holds it"


def _repair_line(what):
    def line(results):
        traced = [r for r in results.get("verify") or [] if r.get("kind") == "trace"]
        after = ", ".join(f"{r['verdict']}{'' if r['ok'] else ' (broken)'}" for r in traced) or "none"
        return f"{what}: {(results.get('summary') or {}).get('status')}; trace after: {after}"
    return line


STEPS = 19


def fresh_state(out):
    """Verify's state store for this demo's sandbox, emptied: the sandbox is reset, so what an earlier demo
    remembered of its conversations is no longer true (and the user's own ~/.flexops/state stays untouched)."""
    folder = out / "state"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def run_demo(out_dir=DEFAULT_OUT, echo=print, progress_bar=False):
    """Run the demo; returns the list of Steps. Raises FlexopsError naming the step (and its notebook) on failure."""
    from .sandbox.control import SandboxControl
    from .sandbox.seed import DEMO_PAGES
    from .sandbox.server import SandboxServer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    books, kernel = notebooks_dir(), kernel_name()
    page_id, page_name = DEMO_PAGES[0]
    create = {"target": "sandbox", "page_id": page_id, "friendly_name": page_name, "integration": "studio",
              "retry_count": 3}
    steps = []
    started = time.monotonic()

    def done(step, began):
        step.seconds = time.monotonic() - began
        steps.append(step)
        where = f"  -> {step.notebook}" if step.notebook else ""
        echo(f"  [{len(steps)}/{STEPS}] {step.name:<22} {step.summary} ({step.seconds:.1f}s){where}")

    def runbook(name, notebook, parameters, describe, may_fail=False):
        began = time.monotonic()
        folder = out / f"{len(steps) + 1:02d}_{name.replace(' ', '_')}"
        path, results = execute(books / notebook, folder, parameters, kernel, progress_bar, may_fail)
        done(Step(name, describe(results), path, results), began)
        return results

    with SandboxServer(out / "sandbox.db") as server:
        control = SandboxControl(server.url)
        control.reset()
        control.seed()
        echo(f"flexops demo: fresh sandbox at {server.url}, kernel {kernel!r}, output in {out}")
        with environment(FLEXOPS_SANDBOX_URL=server.url, FLEXOPS_SANDBOX_TOKEN=server.control_token,
                         FLEXOPS_TARGET="sandbox", FLEXOPS_STATE_DIR=fresh_state(out)):
            runbook("00 connect", "00_connect.ipynb", {"target": "sandbox"},
                    lambda r: f"preflight: {_checks_line(r)}")
            runbook("10 create", "10_create_messenger_address.ipynb", create,
                    lambda r: f"{r['result']['action']} {r['result']['address']} ({r['result']['sid']})")
            began = time.monotonic()
            reply = control.simulate_inbound(page_id, DEMO_SENDER, DEMO_TEXT)
            if not reply.get("delivered"):
                raise FlexopsError(f"the simulated first message was not delivered: {reply.get('reason')}")
            execution = reply.get("studio_execution_sid")
            done(Step("first message", f"a customer wrote {DEMO_TEXT!r} to {page_name}: conversation "
                      f"{reply['conversation_sid']}" + (f", Studio execution {execution}" if execution else
                                                        " (no Studio execution: is the flow published?)")),
                 began)
            runbook("20 verify", "20_verify_messenger_addresses.ipynb",
                    {"target": "sandbox", "page_ids": page_id, "require_first_message": True},
                    lambda r: f"verification: {_checks_line(r)}")
            began = time.monotonic()
            agent = accept_as_agent(server.url, reply["task_sid"])
            done(Step("agent accepts", f"{agent} accepted task {reply['task_sid']} in Flex"), began)
            trace = {"target": "sandbox", "page_id": page_id}
            runbook("50 trace", "50_trace_messenger_message.ipynb", trace, _trace_line)
            began = time.monotonic()
            stale = break_on_purpose(server.url, control, page_id, reply["task_sid"])
            done(Step("broken on purpose", stale), began)
            runbook("50 trace again", "50_trace_messenger_message.ipynb", trace, _trace_line, may_fail=True)
            runbook("60 janitor", "60_close_stale_conversations.ipynb",
                    {"target": "sandbox", "page_ids": page_id, "idle": "0s", "confirm": True},
                    lambda r: f"stale conversations closed, verified: {(r.get('verify') or {}).get('all_closed')}")
            began = time.monotonic()
            done(Step("routing broken", facebook_only_routing(server.url)), began)
            written = control.simulate_inbound(page_id, DEMO_SENDER, "Hello again?")["conversation_sid"]
            runbook("50 trace routing", "50_trace_messenger_message.ipynb", {**trace, "conversation_sid": written},
                    _trace_line, may_fail=True)
            runbook("70 routing fix", "70_repair_routing_and_legacy.ipynb",
                    {"target": "sandbox", "repair": "routing", "confirm": True},
                    _repair_line("routing fix"))
            written = control.simulate_inbound(page_id, DEMO_SENDER + "1", "Hi, new customer here")["conversation_sid"]
            runbook("50 trace healthy", "50_trace_messenger_message.ipynb", {**trace, "conversation_sid": written},
                    _trace_line)
            began = time.monotonic()
            second = DEMO_PAGES[1][0]
            done(Step("legacy holds a Page", legacy_flow_holds_the_page(server.url, second)), began)
            runbook("50 trace legacy", "50_trace_messenger_message.ipynb", {**trace, "page_id": second},
                    _trace_line, may_fail=True)
            runbook("70 legacy retire", "70_repair_routing_and_legacy.ipynb",
                    {"target": "sandbox", "repair": "legacy", "confirm": True}, _repair_line("legacy retire"))
            written = control.simulate_inbound(second, DEMO_SENDER, "Hello, second Page")["conversation_sid"]
            runbook("50 trace retired", "50_trace_messenger_message.ipynb",
                    {**trace, "page_id": second, "conversation_sid": written}, _trace_line)
            report = runbook("30 report", "30_inventory_report.ipynb", {"target": "sandbox"},
                             lambda r: f"{r['summary']['total']} address configuration(s) reported")
            runbook("10 create again", "10_create_messenger_address.ipynb", create,
                    lambda r: "no change" if r["result"]["action"] == "unchanged"
                    else f"unexpected: {r['result']['action']}")
    html = (report.get("reports") or {}).get("html")
    echo(f"done in {time.monotonic() - started:.0f}s. HTML report: {html}")
    echo("open the executed notebooks above in JupyterLab, or run a runbook yourself: flexops run notebooks/...")
    return steps


def _accounts_line(results):
    per = results.get("accounts") or []
    bad = [a for a in per if a["status"] == "fail"]
    return (f"{len(per)} accounts: {len(per) - len(bad)} ok, {len(bad)} failing"
            + (f" ({', '.join(a['account_name'] or a['account_sid'] for a in bad)})" if bad else ""))


def run_fleet_demo(out_dir=DEFAULT_OUT / "fleet", echo=print, progress_bar=False, subaccounts=3):
    """`flexops demo --fleet`: an ISV's main account with `subaccounts` Flex subaccounts (one broken on purpose),
    verified (20) and reported (30) as one fleet with accounts=all. Returns the list of Steps."""
    from .sandbox.control import SandboxControl
    from .sandbox.server import SandboxServer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    books, kernel, steps, started = notebooks_dir(), kernel_name(), [], time.monotonic()
    with SandboxServer(out / "sandbox.db") as server:
        control = SandboxControl(server.url)
        control.reset()
        made = control.seed("fleet", subaccounts=subaccounts)
        echo(f"flexops demo --fleet: fresh sandbox at {server.url}, main account with {subaccounts} subaccounts "
             f"(one broken on purpose), output in {out}")
        with environment(FLEXOPS_SANDBOX_URL=server.url, FLEXOPS_SANDBOX_TOKEN=server.control_token,
                         FLEXOPS_TARGET="sandbox", FLEXOPS_STATE_DIR=fresh_state(out)):
            for index, (name, notebook, extra) in enumerate((
                    ("20 verify fleet", "20_verify_messenger_addresses.ipynb", {}),
                    ("30 report fleet", "30_inventory_report.ipynb", {})), start=1):
                began = time.monotonic()
                folder = out / f"{index:02d}_{name.replace(' ', '_')}"
                path, results = execute(books / notebook, folder, {"target": "sandbox", "accounts": "all", **extra},
                                        kernel, progress_bar, may_fail=True)
                steps.append(Step(name, _accounts_line(results), path, results, time.monotonic() - began))
                echo(f"  [{index}/2] {name:<16} {steps[-1].summary} ({steps[-1].seconds:.1f}s)  -> {path}")
    broken = made["broken_account_sid"]
    html = (steps[-1].results.get("reports") or {}).get("html")
    echo(f"done in {time.monotonic() - started:.0f}s. Subaccount {broken} fails on purpose (an address on a draft "
         f"flow). HTML report: {html}")
    return steps
