"""Flex v1 (flex-api.twilio.com): the account's Flex configuration."""
from werkzeug.routing import Rule

from .context import json_response

# Every property Twilio documents for the resource: Twilio always sends them all, null when unset.
FIELDS = (
    "account_sid", "date_created", "date_updated", "attributes", "status", "taskrouter_workspace_sid",
    "taskrouter_target_workflow_sid", "taskrouter_target_taskqueue_sid", "taskrouter_taskqueues",
    "taskrouter_skills", "taskrouter_worker_channels", "taskrouter_worker_attributes",
    "taskrouter_offline_activity_sid", "runtime_domain", "messaging_service_instance_sid",
    "chat_service_instance_sid", "flex_service_instance_sid", "flex_instance_sid", "ui_language", "ui_attributes",
    "ui_dependencies", "ui_version", "service_version", "call_recording_enabled", "call_recording_webhook_url",
    "crm_enabled", "crm_type", "crm_callback_url", "crm_fallback_url", "crm_attributes", "public_attributes",
    "plugin_service_enabled", "plugin_service_attributes", "integrations", "outbound_call_flows",
    "serverless_service_sids", "queue_stats_configuration", "notifications", "markdown", "url", "flex_insights_hr",
    "flex_insights_drilldown", "flex_url", "channel_configs", "debugger_integration", "flex_ui_status_report",
    "agent_conv_end_methods", "citrix_voice_vdi", "offline_config",
)


def render(config):
    return {name: config.get(name) for name in FIELDS}


def fetch_configuration(ctx):
    return json_response(render(ctx.get("flex_configuration", sid="configuration")))


RULES = [Rule("/v1/Configuration", methods=["GET"], endpoint=fetch_configuration)]
