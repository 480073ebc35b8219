"""Flex v1 state and rules: the account's Flex configuration, its setup (TaskRouter workspace included) and
Interactions — what Studio's Send to Flex creates: an interaction (KD…) with one channel (UO…) bound to the
conversation, and a TaskRouter task routed by the workflow. Legacy Flex Flows live in `flows.py`.
"""
import json

from ..core import new_sid, now
from ..errors import TwilioError, invalid
from ..taskrouter.models import TaskRouterBackend
from ..taskrouter.records import transaction
from .flows import FlexFlows

CONFIG_KIND = "flex_configuration"


def config_sid(account_sid):
    """The stored SID of an account's one configuration: resource SIDs are unique across all accounts."""
    return f"{account_sid}:configuration"
INTERACTION_KIND, CHANNEL_KIND = "flex_interaction", "flex_interaction_channel"
BASE = "https://flex-api.twilio.com/v1"
CHANNEL_TYPES = ("voice", "sms", "email", "web", "whatsapp", "chat", "messenger", "gbm")
INITIATORS = ("customer", "api", "agent")
CHANNEL_UPDATES = ("closed", "inactive")

# Every property Twilio documents for the configuration: Twilio always sends them all, null when unset.
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


def render_configuration(config):
    return {name: config.get(name) for name in FIELDS}


def _json_object(value, name):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(f"Invalid {name}: must be a JSON object") from None
    if not isinstance(value, dict):
        raise invalid(f"Invalid {name}: must be a JSON object")
    return value


def _integer(properties, name, default):
    value = properties.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid Routing: properties.{name} must be an integer, not {value!r}") from None


class FlexBackend:
    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    # --- configuration -----------------------------------------------------------------------------------

    def configuration(self):
        found = self.store.get(self.account_sid, CONFIG_KIND, sid=config_sid(self.account_sid))
        return render_configuration(found) if found is not None else None

    def setup_flex(self, flex_service_sid, chat_service_sid, db=None):
        """Provision Flex: the TaskRouter workspace ("Flex Task Assignment") and the configuration naming it, the
        Conversations services and the offline activity. Keeps other configuration fields already set."""
        with transaction(self.store, db) as db:
            made = TaskRouterBackend(self.store, self.account_sid).create_flex_workspace(db=db)
            stamp = now()
            current = self.store.get(self.account_sid, CONFIG_KIND, sid=config_sid(self.account_sid))
            config = current or {"account_sid": self.account_sid, "date_created": stamp, "status": "ok",
                                 "flex_instance_sid": new_sid("GO"), "messaging_service_instance_sid": None,
                                 "runtime_domain": "flexops-demo-1234.twil.io", "service_version": "2.0",
                                 "ui_version": "2.9.0", "url": f"{BASE}/Configuration"}
            config.update(date_updated=stamp, taskrouter_workspace_sid=made["workspace_sid"],
                          taskrouter_target_workflow_sid=made["workflow_sid"],
                          taskrouter_target_taskqueue_sid=made["queue_sid"],
                          taskrouter_taskqueues=[{"sid": made["queue_sid"], "targettable": True}],
                          taskrouter_offline_activity_sid=made["activities"]["Offline"],
                          flex_service_instance_sid=flex_service_sid, chat_service_instance_sid=chat_service_sid)
            if current is None:
                self.store.insert(db, self.account_sid, CONFIG_KIND, config_sid(self.account_sid), config)
            else:
                self.store.replace(db, self.account_sid, CONFIG_KIND, config_sid(self.account_sid), config)
        return {**made, "chat_channel_sid": made["task_channels"]["chat"]}

    def restore_configuration(self, config):
        """Write the configuration as given (Twilio's rendered fields; another account's copy, as `flexops sandbox
        import` makes it), owned by this account."""
        data = {**{name: config.get(name) for name in FIELDS}, "account_sid": self.account_sid}
        with self.store.tx() as db:
            if not self.store.insert(db, self.account_sid, CONFIG_KIND, config_sid(self.account_sid), data):
                self.store.replace(db, self.account_sid, CONFIG_KIND, config_sid(self.account_sid), data)
        return render_configuration(data)

    # --- interactions ------------------------------------------------------------------------------------

    def create_interaction(self, channel, routing, db=None):
        """An inbound interaction bound to a conversation (`channel.properties.media_channel_sid`, CH…) and its
        task, created in the workspace and by the workflow `routing.properties` names. Raises TwilioError."""
        channel = _json_object(channel, "Channel")
        kind, initiated_by = channel.get("type"), channel.get("initiated_by", "customer")
        if kind not in CHANNEL_TYPES:
            raise invalid(f"Invalid Channel: type {kind!r} must be one of {', '.join(CHANNEL_TYPES)}")
        if initiated_by not in INITIATORS:
            raise invalid(f"Invalid Channel: initiated_by {initiated_by!r} must be one of {', '.join(INITIATORS)}")
        media = (channel.get("properties") or {}).get("media_channel_sid")
        if not media:
            raise invalid("Invalid Channel: properties.media_channel_sid (the conversation CH…) is required")
        conversation = self.store.get(self.account_sid, "conversation", sid=media)
        if conversation is None:
            raise invalid(f"Invalid Channel: conversation {media} not found")
        if conversation.get("state") == "closed":
            raise TwilioError(400, 45354, f"Cannot create a Channel for the closed Conversation {media}")
        properties = (_json_object(routing, "Routing").get("properties")) if routing is not None else None
        if not isinstance(properties, dict) or not properties.get("workspace_sid"):
            raise invalid("Invalid Routing: properties.workspace_sid is required")
        workspace_sid = properties["workspace_sid"]
        tasks = TaskRouterBackend(self.store, self.account_sid)
        workflow_sid = properties.get("workflow_sid") or self._only_workflow(tasks, workspace_sid)
        task_channel = properties.get("task_channel_unique_name") or self._channel_name(
            tasks, workspace_sid, properties.get("task_channel_sid"))
        sid, channel_sid = new_sid("KD"), new_sid("UO")
        attributes = dict(_json_object(properties.get("attributes") or {}, "Routing attributes"))
        attributes.update(conversationSid=media, flexInteractionSid=sid, flexInteractionChannelSid=channel_sid)
        attributes.setdefault("channelType", kind)
        attributes.setdefault("direction", "outbound" if initiated_by == "agent" else "inbound")
        url = f"{BASE}/Interactions/{sid}"
        with transaction(self.store, db) as db:
            task = tasks.create_task(workspace_sid, workflow_sid, task_channel, attributes,
                                     timeout=_integer(properties, "timeout", 86400),
                                     priority=_integer(properties, "priority", 0), db=db)
            interaction = {"sid": sid, "channel": {**channel, "sid": channel_sid},
                           "routing": {"reservation": None, "properties": task}, "url": url,
                           "links": {"channels": f"{url}/Channels"}, "interaction_context_sid": None,
                           "webhook_ttid": None}
            self.store.insert(db, self.account_sid, INTERACTION_KIND, sid, interaction)
            channel_url = f"{url}/Channels/{channel_sid}"
            self.store.insert(db, self.account_sid, CHANNEL_KIND, channel_sid, {
                "sid": channel_sid, "interaction_sid": sid, "type": kind, "status": "active", "error_code": None,
                "error_message": None, "url": channel_url,
                "links": {name: f"{channel_url}/{name.title()}" for name in ("participants", "invites", "transfers")},
                "_media_channel_sid": media, "_workspace_sid": workspace_sid, "_task_sids": [task["sid"]]},
                parent=sid)
        return interaction

    def _only_workflow(self, tasks, workspace_sid):
        """Twilio: workflow_sid may be left out when the workspace has exactly one workflow."""
        workflows = self.store.page(self.account_sid, "taskrouter_workflow", 0, 2, parent=workspace_sid)
        if len(workflows) != 1:
            tasks.fetch("workspace", None, workspace_sid)  # 404 for an unknown workspace
            raise invalid("Invalid Routing: properties.workflow_sid is required when the workspace has "
                          f"{len(workflows)} workflows")
        return workflows[0][1]["sid"]

    def _channel_name(self, tasks, workspace_sid, task_channel_sid):
        if not task_channel_sid:
            return "default"
        channel = self.store.get(self.account_sid, "taskrouter_task_channel", sid=task_channel_sid)
        if channel is None or channel["workspace_sid"] != workspace_sid:
            raise invalid(f"Invalid Routing: task_channel_sid {task_channel_sid} is not a task channel of "
                          f"workspace {workspace_sid}")
        return channel["unique_name"]

    def interaction(self, sid):
        found = self.store.get(self.account_sid, INTERACTION_KIND, sid=sid)
        if found is None:
            raise TwilioError(404, 20404, f"The requested resource /v1/Interactions/{sid} was not found")
        return found

    def channel(self, interaction_sid, sid):
        self.interaction(interaction_sid)
        found = self.store.get(self.account_sid, CHANNEL_KIND, sid=sid)
        if found is None or found["interaction_sid"] != interaction_sid:
            raise TwilioError(404, 20404, f"The requested resource /v1/Interactions/{interaction_sid}/Channels/"
                                          f"{sid} was not found")
        return found

    def update_channel(self, interaction_sid, sid, status):
        """Close (or make inactive) an interaction channel: its open tasks end — assigned or wrapping ones are
        completed, pending or reserved ones canceled. The conversation itself is left as it is."""
        if status not in CHANNEL_UPDATES:
            raise invalid(f"Invalid Status {status!r}: must be closed or inactive")
        channel = self.channel(interaction_sid, sid)
        if channel["status"] in ("closed", "failed"):
            raise TwilioError(400, 80906, f"Interaction channel {sid} is not open (it is {channel['status']})")
        tasks = TaskRouterBackend(self.store, self.account_sid)
        workspace_sid = channel["_workspace_sid"]
        ends = {"assigned": "completed", "wrapping": "completed", "pending": "canceled", "reserved": "canceled"}
        with self.store.tx() as db:  # the tasks end and the channel closes together, or nothing changes
            for task_sid in channel["_task_sids"]:
                end = ends.get(tasks.fetch("task", workspace_sid, task_sid)["assignment_status"])
                if end:
                    tasks.update_task(workspace_sid, task_sid, end, f"interaction channel {status}", db=db)
            channel["status"] = status
            self.store.replace(db, self.account_sid, CHANNEL_KIND, sid, channel)
        return channel

    def channel_rows(self, interaction_sid):
        self.interaction(interaction_sid)
        return self.store.page(self.account_sid, CHANNEL_KIND, 0, 10 ** 9, parent=interaction_sid)

    # --- legacy Flex Flows -------------------------------------------------------------------------------

    @property
    def flows(self):
        return FlexFlows(self.store, self.account_sid)

    def legacy_flow_for(self, contact_identity):
        """The enabled legacy Flex Flow holding `contact_identity` (e.g. messenger:<page id>), or None."""
        return self.flows.holding(contact_identity, enabled_only=True)


def render_channel(channel):
    return {k: v for k, v in channel.items() if not k.startswith("_")}
