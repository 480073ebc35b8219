"""Legacy Flex Flows (FO…, flex-api /v1/FlexFlows): the Flex UI 1.x link from a contact identity (a number,
`messenger:<page id>`...) to Flex through Studio, a webhook or a task.

Twilio's rules emulated: FriendlyName, ChatServiceSid and ChannelType are required on create; one Flex Flow per
contact identity — another flow claiming it is refused with 45210 (create) or 45212 (update); an integration
needs what its type uses (studio: Integration.FlowSid, external: Integration.Url, task: Integration.WorkspaceSid
and Integration.WorkflowSid), else 45212.
"""
from ..core import new_sid, now
from ..errors import TwilioError, invalid

KIND = "flex_flow"
BASE = "https://flex-api.twilio.com/v1/FlexFlows"
CHANNEL_TYPES = ("web", "sms", "facebook", "whatsapp", "line", "custom")
INTEGRATION_TYPES = ("studio", "external", "task")
# Integration.<Name> form fields -> keys of the rendered `integration` object
INTEGRATION_FIELDS = {"FlowSid": "flow_sid", "Url": "url", "WorkspaceSid": "workspace_sid",
                      "WorkflowSid": "workflow_sid", "Channel": "channel", "Timeout": "timeout",
                      "Priority": "priority", "CreationOnMessage": "creation_on_message", "RetryCount": "retry_count"}
NEEDS = {"studio": ("flow_sid",), "external": ("url",), "task": ("workspace_sid", "workflow_sid")}


class FlexFlows:
    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    def get(self, sid):
        found = self.store.get(self.account_sid, KIND, sid=sid)
        if found is None:
            raise TwilioError(404, 20404, f"The requested resource /v1/FlexFlows/{sid} was not found")
        return found

    def holding(self, contact_identity, enabled_only=False, other_than=None):
        where = {"contact_identity": contact_identity}
        if enabled_only:
            where["enabled"] = True
        rows = self.store.page(self.account_sid, KIND, 0, 10 ** 9, where=where)
        return next((flow for _, flow in rows if flow["sid"] != other_than), None)

    def rows(self, friendly_name=None):
        return self.store.page(self.account_sid, KIND, 0, 10 ** 9,
                               where={"friendly_name": friendly_name} if friendly_name else None)

    def _apply(self, flow, fields, code):
        """Set `fields` (snake_case; `integration` a partial dict) on `flow` after Twilio's checks."""
        for name, allowed in (("channel_type", CHANNEL_TYPES), ("integration_type", INTEGRATION_TYPES)):
            value = fields.get(name)
            if value is not None and value not in allowed:
                raise invalid(f"Invalid {name.title().replace('_', '')} {value!r}: must be one of "
                              f"{', '.join(allowed)}")
        integration = {**(flow.get("integration") or {}), **(fields.pop("integration", None) or {})}
        flow.update({k: v for k, v in fields.items() if v is not None})
        if flow.get("integration_type") is None:
            flow["integration_type"] = "studio" if integration.get("flow_sid") else (
                "external" if integration.get("url") else "task" if integration.get("workflow_sid") else "studio")
        lacking = [f"Integration.{form}" for form, key in INTEGRATION_FIELDS.items()
                   if key in NEEDS[flow["integration_type"]] and integration.get(key) is None]
        if lacking:
            raise TwilioError(400, 45212, f"Flex Flow creation failed: integration type {flow['integration_type']} "
                                          f"needs {', '.join(lacking)}")
        flow["integration"] = integration
        identity = flow.get("contact_identity")
        if identity:
            holder = self.holding(identity, other_than=flow["sid"])
            if holder is not None:
                raise TwilioError(400, code, f"Flex Flow creation failed: contact identity {identity!r} is already "
                                             f"held by Flex Flow {holder['sid']} ({holder['friendly_name']})")
        return flow

    def create(self, friendly_name, chat_service_sid, channel_type, contact_identity=None, enabled=None,
               integration_type=None, integration=None, long_lived=None, janitor_enabled=None, sid=None):
        """`sid`: a copied Flex Flow keeps its own (`flexops sandbox import`)."""
        for name, value in (("FriendlyName", friendly_name), ("ChatServiceSid", chat_service_sid),
                            ("ChannelType", channel_type)):
            if not value:
                raise TwilioError(400, 45210, f"Flex Flow creation failed: missing required parameter {name}")
        sid, stamp = sid or new_sid("FO"), now()
        flow = {"account_sid": self.account_sid, "sid": sid, "date_created": stamp, "date_updated": stamp,
                "friendly_name": None, "chat_service_sid": None, "channel_type": None, "contact_identity": None,
                "enabled": False, "integration_type": None, "integration": None, "long_lived": False,
                "janitor_enabled": False, "url": f"{BASE}/{sid}"}
        self._apply(flow, {"friendly_name": friendly_name, "chat_service_sid": chat_service_sid,
                           "channel_type": channel_type, "contact_identity": contact_identity, "enabled": enabled,
                           "integration_type": integration_type, "integration": integration,
                           "long_lived": long_lived, "janitor_enabled": janitor_enabled}, 45210)
        with self.store.tx() as db:
            self.store.insert(db, self.account_sid, KIND, sid, flow)
        return flow

    def update(self, sid, **fields):
        flow = self.get(sid)
        self._apply(flow, fields, 45212)
        flow["date_updated"] = now()
        with self.store.tx() as db:
            self.store.replace(db, self.account_sid, KIND, sid, flow)
        return flow

    def delete(self, sid):
        with self.store.tx() as db:
            if not self.store.delete(db, self.account_sid, KIND, sid):
                raise TwilioError(404, 20404, f"The requested resource /v1/FlexFlows/{sid} was not found")
