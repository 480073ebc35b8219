"""TaskRouter workflows that cannot route a Messenger task: find them, and plan the fix.

Why: Flex Conversations tasks say `channelType == 'messenger'`; workflows written for legacy Flex Flows match
`'facebook'`, so after the migration Messenger tasks fall through to another filter, or to no queue at all. Every
filter (and each target's worker expression) of Flex's workspace is evaluated against a representative Messenger
task (trace_hops.MESSENGER_TASK) and the same task as a legacy Flex Flow made it (channelType facebook): an
expression that matches only the legacy one is reported, with the rewrite that keeps both
(`channelType == 'facebook'` → `channelType IN ['facebook', 'messenger']`; `IN [.., 'facebook', ..]` gains
`'messenger'`). A rewrite is proposed only when it parses, matches the Messenger task and still matches the legacy
one; anything else is left for a person. The fix is a repairs.RepairPlan (one workflow update per workflow).
"""
import copy
import difflib
import json
import re
from dataclasses import asdict, dataclass

from . import repairs, retry, task_expressions
from .coerce import as_sids
from .exceptions import ValidationError
from .trace_hops import MESSENGER_TASK, workflow_problems

LEGACY_TASK = {**MESSENGER_TASK, "channelType": "facebook"}
_KEY = r"(?<![\w.])(?:task\.)?channelType"
_EQUALS = re.compile(rf"""(?P<key>{_KEY})\s*==?\s*(?P<q>['"])facebook(?P=q)""")
_IN_LIST = re.compile(rf"""(?P<head>{_KEY}\s+IN\s*\[)(?P<items>[^\]]*)\]""", re.IGNORECASE)
_FACEBOOK_ITEM = re.compile(r"""(['"])facebook\1""")


@dataclass
class Finding:
    workflow_sid: str
    workflow: str
    where: str  # filter 'name' / filter 'name' target 1
    expression: str
    problem: str  # legacy_only | invalid
    detail: str
    fix: str = None  # the rewritten expression, None when a person must fix it

    def to_dict(self):
        return asdict(self)


def rewrite(expression):
    """The expression matching Messenger tasks too, or None when no safe textual rewrite exists."""
    def add(match):
        items = match["items"]
        found = _FACEBOOK_ITEM.search(items)
        if found is None or re.search(r"""['"]messenger['"]""", items):
            return match.group(0)
        return f"{match['head']}{items.rstrip()}, {found.group(1)}messenger{found.group(1)}]"

    new = _EQUALS.sub(lambda m: f"{m['key']} IN [{m['q']}facebook{m['q']}, {m['q']}messenger{m['q']}]", expression)
    new = _IN_LIST.sub(add, new)
    return new if new != expression else None


def _judge(expression, worker_attributes=None):
    """(matches Messenger, matches legacy) for a filter expression, or for a target expression over the workers."""
    if worker_attributes is None:
        return (task_expressions.matches(expression, MESSENGER_TASK),
                task_expressions.matches(expression, LEGACY_TASK))
    workers = worker_attributes or [{}]
    return tuple(any(task_expressions.matches(expression, w, scopes={"task": task, "worker": w}) for w in workers)
                 for task in (MESSENGER_TASK, LEGACY_TASK))


def _finding(workflow, where, expression, workers=None):
    try:
        messenger, legacy = _judge(expression, workers)
    except task_expressions.ExpressionError as exc:
        return Finding(workflow["sid"], workflow.get("friendly_name"), where, expression, "invalid", str(exc))
    if messenger or not legacy:
        return None
    fix = rewrite(expression)
    if fix is not None:
        try:
            if _judge(fix, workers) != (True, True):
                fix = None
        except task_expressions.ExpressionError:
            fix = None
    detail = ("matches only the legacy channelType 'facebook': Messenger tasks (channelType 'messenger') "
              + ("skip this filter" if workers is None else "find no worker through this target"))
    return Finding(workflow["sid"], workflow.get("friendly_name"), where, expression, "legacy_only", detail, fix)


def _rules(configuration):
    routing = (repairs.configuration_of(configuration) or {}).get("task_routing") or {}
    return routing.get("filters") or []


def analyse(workflow, workers=()):
    """{sid, friendly_name, routes_messenger, problems, findings} for one workflow (JSON, see repairs)."""
    findings = []
    try:
        rules = _rules(workflow.get("configuration"))
    except AttributeError:
        rules = []
    for index, rule in enumerate(rules, start=1):
        name = f"filter {rule.get('filter_friendly_name') or index!r}"
        found = _finding(workflow, name, rule.get("expression") or "")
        findings += [found] if found else []
        for number, target in enumerate(rule.get("targets") or [], start=1):
            if target.get("expression"):
                found = _finding(workflow, f"{name} target {number}", target["expression"], list(workers))
                findings += [found] if found else []
    problems = workflow_problems(workflow.get("configuration"))
    return {"sid": workflow["sid"], "friendly_name": workflow.get("friendly_name"), "routes_messenger": not problems,
            "problems": problems, "findings": [f.to_dict() for f in findings]}


def flex_workspace(client):
    """Flex's TaskRouter workspace SID (from the Flex configuration)."""
    config = retry.call(retry.none_if_missing(lambda: client.flex_api.v1.configuration().fetch()),
                        what="fetch the Flex configuration", client=client)
    if config is None or not config.taskrouter_workspace_sid:
        raise ValidationError("target", "Flex is not set up in this account (no TaskRouter workspace)")
    return config.taskrouter_workspace_sid


def check(client):
    """Every workflow of Flex's workspace judged for Messenger tasks: {workspace_sid, workflows: [...]}."""
    workspace = flex_workspace(client)
    space = client.taskrouter.v1.workspaces(workspace)
    flows = retry.call(lambda: space.workflows.list(page_size=50), what="list workflows", client=client)
    workers = retry.call(lambda: space.workers.list(page_size=50, limit=200), what="list workers", client=client)
    attributes = [repairs.configuration_of(w.attributes) or {} for w in workers]
    return {"workspace_sid": workspace,
            "workflows": [analyse(repairs.workflow_json(f), attributes) for f in flows]}


def findings_table(report):
    import pandas as pd

    rows = [{"workflow": w["friendly_name"], "sid": w["sid"], "routes_messenger": w["routes_messenger"],
             "where": f["where"], "problem": f["problem"], "expression": f["expression"], "fix": f["fix"] or ""}
            for w in report["workflows"] for f in w["findings"] or [{"where": "", "problem": "",
                                                                     "expression": "", "fix": None}]]
    return pd.DataFrame(rows, columns=["workflow", "sid", "routes_messenger", "where", "problem", "expression", "fix"])


def fixed_configuration(configuration, findings):
    """The workflow configuration with every fixable expression rewritten (a new dict)."""
    config = copy.deepcopy(repairs.configuration_of(configuration))
    fixes = {f["expression"]: f["fix"] for f in findings if f.get("fix")}
    for rule in config.get("task_routing", {}).get("filters") or []:
        rule["expression"] = fixes.get(rule.get("expression"), rule.get("expression"))
        for target in rule.get("targets") or []:
            if target.get("expression") in fixes:
                target["expression"] = fixes[target["expression"]]
    return config


def config_diff(before, after, name):
    lines = lambda c: json.dumps(repairs.configuration_of(c), indent=2, sort_keys=True).splitlines()  # noqa: E731
    return "\n".join(difflib.unified_diff(lines(before), lines(after), f"{name} (now)", f"{name} (fixed)",
                                          lineterm=""))


def plan_fix(client, workflow_sids=()):
    """The RepairPlan updating each workflow with fixable findings (only those named, when any are)."""
    wanted = as_sids("workflow_sids", list(workflow_sids), "WW")
    report = check(client)
    known = {w["sid"]: w for w in report["workflows"]}
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ValidationError("workflow_sids", f"not a workflow of Flex's workspace {report['workspace_sid']}",
                              unknown[0])
    space = client.taskrouter.v1.workspaces(report["workspace_sid"])
    steps, notes = [], []
    for sid, judged in known.items():
        if wanted and sid not in wanted:
            continue
        fixable = [f for f in judged["findings"] if f["fix"]]
        notes += [f"{f['workflow']} {f['where']}: {f['expression']!r} — {f['detail']}; fix it by hand"
                  for f in judged["findings"] if not f["fix"]]
        if not fixable:
            continue
        workflow = repairs.workflow_json(retry.call(lambda: space.workflows(sid).fetch(), what=f"fetch workflow {sid}",
                                                    client=client))
        after = fixed_configuration(workflow["configuration"], fixable)
        change = "; ".join(f"{f['where']}: {f['expression']} → {f['fix']}" for f in fixable)
        steps.append(repairs.Step("update", "workflow", sid, sid, workflow,
                                  {**workflow, "configuration": json.dumps(after)},
                                  workspace_sid=report["workspace_sid"], note=change,
                                  diff=config_diff(workflow["configuration"], after, workflow["friendly_name"])))
    return repairs.new_plan(client, "routing-fix", steps, source="flexops routing fix", notes=notes)
