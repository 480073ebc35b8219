"""Studio v2 routes (studio.twilio.com)."""
from werkzeug.routing import Rule

from . import responses as r

EXECUTIONS = "/v2/Flows/<flow_sid>/Executions"

RULES = [
    Rule("/v2/Flows", methods=["GET"], endpoint=r.list_flows),
    Rule("/v2/Flows", methods=["POST"], endpoint=r.create_flow),
    Rule("/v2/Flows/<sid>", methods=["GET"], endpoint=r.fetch_flow),
    Rule("/v2/Flows/<sid>", methods=["POST"], endpoint=r.update_flow),
    Rule("/v2/Flows/<sid>", methods=["DELETE"], endpoint=r.delete_flow),
    Rule("/v2/Flows/<sid>/Revisions", methods=["GET"], endpoint=r.list_revisions),
    Rule("/v2/Flows/<sid>/Revisions/<revision>", methods=["GET"], endpoint=r.fetch_revision),
    Rule(EXECUTIONS, methods=["GET"], endpoint=r.list_executions),
    Rule(f"{EXECUTIONS}/<sid>", methods=["GET"], endpoint=r.fetch_execution),
    Rule(f"{EXECUTIONS}/<execution_sid>/Context", methods=["GET"], endpoint=r.fetch_execution_context),
    Rule(f"{EXECUTIONS}/<execution_sid>/Steps", methods=["GET"], endpoint=r.list_steps),
    Rule(f"{EXECUTIONS}/<execution_sid>/Steps/<sid>", methods=["GET"], endpoint=r.fetch_step),
    Rule(f"{EXECUTIONS}/<execution_sid>/Steps/<step_sid>/Context", methods=["GET"], endpoint=r.fetch_step_context),
]
