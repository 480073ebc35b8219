"""TaskRouter resources as stored and as Twilio renders them (twilio_taskrouter_v1.json schemas).

A `sid=` argument keeps a copied resource's own SID (`flexops sandbox import`); else a new one is made.
Stored dicts are the rendered resource plus private fields starting with `_` (routing state, precise times) that
`render` drops. Every resource of a workspace has the workspace SID as its store `parent` (reservations: their
task's SID), so lists page per workspace.
"""
import json
import time
from contextlib import contextmanager

from ..core import new_sid, now

BASE = "https://taskrouter.twilio.com/v1/Workspaces"
KIND = {"workspace": "taskrouter_workspace", "activity": "taskrouter_activity", "channel": "taskrouter_task_channel",
        "queue": "taskrouter_task_queue", "workflow": "taskrouter_workflow", "worker": "taskrouter_worker",
        "task": "taskrouter_task", "reservation": "taskrouter_reservation", "event": "taskrouter_event"}
ALL = 10 ** 9  # "no limit" for Store.page


def render(data):
    """The resource as Twilio sends it: private fields dropped; a task's `age` as of now."""
    shown = {k: v for k, v in data.items() if not k.startswith("_")}
    if "_created_at" in data and "age" in shown:
        shown["age"] = max(0, int(time.time() - data["_created_at"]))
    return shown


@contextmanager
def transaction(store, db):
    """`db` when the caller already holds a transaction, else a new one."""
    if db is not None:
        yield db
    else:
        with store.tx() as new:
            yield new


def _base(account_sid, sid, stamp, url, **fields):
    return {"account_sid": account_sid, "sid": sid, "date_created": stamp, "date_updated": stamp, "url": url,
            **fields}


def workspace(account_sid, friendly_name, default_activity=None, timeout_activity=None, sid=None):
    sid, stamp = sid or new_sid("WS"), now()
    url = f"{BASE}/{sid}"
    links = {name: f"{url}/{path}" for name, path in (
        ("activities", "Activities"), ("events", "Events"), ("task_channels", "TaskChannels"),
        ("task_queues", "TaskQueues"), ("tasks", "Tasks"), ("workers", "Workers"), ("workflows", "Workflows"),
        ("statistics", "Statistics"), ("real_time_statistics", "RealTimeStatistics"),
        ("cumulative_statistics", "CumulativeStatistics"))}
    return _base(account_sid, sid, stamp, url, friendly_name=friendly_name, event_callback_url=None,
                 events_filter=None, multi_task_enabled=True, prioritize_queue_order="FIFO",
                 default_activity_name=None, default_activity_sid=None, timeout_activity_name=None,
                 timeout_activity_sid=None, links=links)


def activity(account_sid, workspace_sid, friendly_name, available, sid=None):
    sid = sid or new_sid("WA")
    return _base(account_sid, sid, now(), f"{BASE}/{workspace_sid}/Activities/{sid}", workspace_sid=workspace_sid,
                 friendly_name=friendly_name, available=available, links={"workspace": f"{BASE}/{workspace_sid}"})


def task_channel(account_sid, workspace_sid, unique_name, friendly_name, sid=None):
    sid = sid or new_sid("TC")
    return _base(account_sid, sid, now(), f"{BASE}/{workspace_sid}/TaskChannels/{sid}", workspace_sid=workspace_sid,
                 unique_name=unique_name, friendly_name=friendly_name, channel_optimized_routing=False,
                 links={"workspace": f"{BASE}/{workspace_sid}"})


def task_queue(account_sid, workspace_sid, friendly_name, target_workers="1==1", max_reserved_workers=1,
               task_order="FIFO", sid=None):
    sid = sid or new_sid("WQ")
    url = f"{BASE}/{workspace_sid}/TaskQueues/{sid}"
    return _base(account_sid, sid, now(), url, workspace_sid=workspace_sid, friendly_name=friendly_name,
                 target_workers=target_workers, max_reserved_workers=max_reserved_workers, task_order=task_order,
                 assignment_activity_sid=None, assignment_activity_name=None, reservation_activity_sid=None,
                 reservation_activity_name=None,
                 links={"workspace": f"{BASE}/{workspace_sid}", "statistics": f"{url}/Statistics",
                        "real_time_statistics": f"{url}/RealTimeStatistics",
                        "cumulative_statistics": f"{url}/CumulativeStatistics",
                        "list_statistics": f"{BASE}/{workspace_sid}/TaskQueues/Statistics"})


def workflow(account_sid, workspace_sid, friendly_name, configuration, task_reservation_timeout=120,
             assignment_callback_url=None, fallback_assignment_callback_url=None, sid=None):
    sid = sid or new_sid("WW")
    url = f"{BASE}/{workspace_sid}/Workflows/{sid}"
    return _base(account_sid, sid, now(), url, workspace_sid=workspace_sid, friendly_name=friendly_name,
                 configuration=json.dumps(configuration), document_content_type="application/json",
                 task_reservation_timeout=task_reservation_timeout, assignment_callback_url=assignment_callback_url,
                 fallback_assignment_callback_url=fallback_assignment_callback_url,
                 links={"workspace": f"{BASE}/{workspace_sid}", "statistics": f"{url}/Statistics",
                        "real_time_statistics": f"{url}/RealTimeStatistics",
                        "cumulative_statistics": f"{url}/CumulativeStatistics"})


def worker(account_sid, workspace_sid, friendly_name, attributes, activity_record):
    sid, stamp = new_sid("WK"), now()
    url = f"{BASE}/{workspace_sid}/Workers/{sid}"
    return _base(account_sid, sid, stamp, url, workspace_sid=workspace_sid, friendly_name=friendly_name,
                 attributes=json.dumps(attributes), activity_sid=activity_record["sid"],
                 activity_name=activity_record["friendly_name"], available=activity_record["available"],
                 date_status_changed=stamp, _status_changed_at=time.time(),
                 links={"workspace": f"{BASE}/{workspace_sid}", "activity": activity_record["url"],
                        "channels": f"{url}/Channels", "reservations": f"{url}/Reservations",
                        "worker_statistics": f"{url}/Statistics"})


def task(account_sid, workspace_sid, workflow_record, channel_record, attributes, timeout, priority, sid=None):
    sid, stamp = sid or new_sid("WT"), now()
    url = f"{BASE}/{workspace_sid}/Tasks/{sid}"
    return _base(account_sid, sid, stamp, url, workspace_sid=workspace_sid, attributes=json.dumps(attributes),
                 addons="{}", age=0, assignment_status="pending", priority=priority, reason=None, timeout=timeout,
                 task_queue_sid=None, task_queue_friendly_name=None, task_queue_entered_date=None,
                 task_channel_sid=channel_record["sid"], task_channel_unique_name=channel_record["unique_name"],
                 workflow_sid=workflow_record["sid"], workflow_friendly_name=workflow_record["friendly_name"],
                 virtual_start_time=stamp, ignore_capacity=False, routing_target=None,
                 _created_at=time.time(), _target=None, _rejected_by=[],
                 links={"workspace": f"{BASE}/{workspace_sid}", "workflow": workflow_record["url"],
                        "reservations": f"{url}/Reservations"})


def reservation(account_sid, task_record, worker_record):
    sid = new_sid("WR")
    workspace_sid = task_record["workspace_sid"]
    return _base(account_sid, sid, now(), f"{task_record['url']}/Reservations/{sid}", workspace_sid=workspace_sid,
                 task_sid=task_record["sid"], worker_sid=worker_record["sid"],
                 worker_name=worker_record["friendly_name"], reservation_status="pending",
                 links={"task": task_record["url"], "worker": worker_record["url"],
                        "workspace": f"{BASE}/{workspace_sid}"})


def load(store, account_sid, name, sid):
    return store.get(account_sid, KIND[name], sid=sid)


def save(store, db, account_sid, name, data):
    data["date_updated"] = now()
    store.replace(db, account_sid, KIND[name], data["sid"], data)


def children(store, account_sid, name, parent, where=None):
    """Every stored resource of `name` under `parent`, in creation order."""
    return [data for _, data in store.page(account_sid, KIND[name], 0, ALL, parent=parent, where=where)]
