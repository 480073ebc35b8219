"""TaskRouter v1 routes (taskrouter.twilio.com)."""
from werkzeug.routing import Rule

from . import responses as r

WS = "/v1/Workspaces/<workspace_sid>"

RULES = [
    Rule("/v1/Workspaces", methods=["GET"], endpoint=r.list_workspaces),
    Rule("/v1/Workspaces/<sid>", methods=["GET"], endpoint=r.fetch_workspace),
    Rule(f"{WS}/Activities", methods=["GET"], endpoint=r.list_activities),
    Rule(f"{WS}/TaskChannels", methods=["GET"], endpoint=r.list_task_channels),
    Rule(f"{WS}/TaskQueues", methods=["GET"], endpoint=r.list_task_queues),
    Rule(f"{WS}/TaskQueues", methods=["POST"], endpoint=r.create_task_queue),
    Rule(f"{WS}/TaskQueues/<sid>", methods=["GET"], endpoint=r.fetch_task_queue),
    Rule(f"{WS}/Workflows", methods=["GET"], endpoint=r.list_workflows),
    Rule(f"{WS}/Workflows", methods=["POST"], endpoint=r.create_workflow),
    Rule(f"{WS}/Workflows/<sid>", methods=["GET"], endpoint=r.fetch_workflow),
    Rule(f"{WS}/Workflows/<sid>", methods=["POST"], endpoint=r.update_workflow),
    Rule(f"{WS}/Workers", methods=["GET"], endpoint=r.list_workers),
    Rule(f"{WS}/Workers", methods=["POST"], endpoint=r.create_worker),
    Rule(f"{WS}/Workers/<sid>", methods=["GET"], endpoint=r.fetch_worker),
    Rule(f"{WS}/Workers/<sid>", methods=["POST"], endpoint=r.update_worker),
    Rule(f"{WS}/Tasks", methods=["GET"], endpoint=r.list_tasks),
    Rule(f"{WS}/Tasks", methods=["POST"], endpoint=r.create_task),
    Rule(f"{WS}/Tasks/<sid>", methods=["GET"], endpoint=r.fetch_task),
    Rule(f"{WS}/Tasks/<sid>", methods=["POST"], endpoint=r.update_task),
    Rule(f"{WS}/Tasks/<task_sid>/Reservations", methods=["GET"], endpoint=r.list_task_reservations),
    Rule(f"{WS}/Tasks/<task_sid>/Reservations/<sid>", methods=["GET"], endpoint=r.fetch_task_reservation),
    Rule(f"{WS}/Tasks/<task_sid>/Reservations/<sid>", methods=["POST"], endpoint=r.update_task_reservation),
    Rule(f"{WS}/Events", methods=["GET"], endpoint=r.list_events),
]
