"""Studio v2: flows, their revisions, executions, steps and contexts of one account, with Studio's rules.
No HTTP and no form parsing; running a definition is `engine.py`'s job."""
from ..core import new_sid, now
from ..errors import TwilioError, invalid, missing, not_found

KIND, REVISION, EXECUTION, STEP = "studio_flow", "studio_flow_revision", "studio_execution", "studio_step"
STATUSES = ("draft", "published")
EXECUTION_STATUSES = ("active", "ended")
BASE = "https://studio.twilio.com/v2/Flows"


def validate_definition(definition):
    """Studio's structural rules we emulate: a trigger state exists and every transition names a known state."""
    errors = []
    states = definition.get("states") if isinstance(definition, dict) else None
    if not isinstance(states, list):
        return ["Definition must be an object with a list of states"]
    names = {s.get("name") for s in states if isinstance(s, dict)}
    if not any(s.get("type") == "trigger" for s in states if isinstance(s, dict)):
        errors.append("Definition has no trigger state")
    if definition.get("initial_state") not in names:
        errors.append(f"initial_state {definition.get('initial_state')!r} is not a state")
    for state in states:
        for transition in state.get("transitions", []) if isinstance(state, dict) else []:
            target = transition.get("next")
            if target and target not in names:
                errors.append(f"State {state.get('name')!r} transitions to unknown state {target!r}")
    return errors


def check_status(status, required):
    if status is None:
        if required:
            raise missing("Status")
        return None
    if status not in STATUSES:
        raise invalid(f"Invalid Status {status!r}: must be draft or published")
    return status


def apply_definition(flow, definition, status):
    """Set status (and definition: a new revision) after Studio's checks; publishing an invalid flow is refused."""
    errors = validate_definition(flow["definition"] if definition is None else definition)
    if status == "published" and errors:
        raise TwilioError(400, 20001, "Invalid Definition: " + "; ".join(errors))
    if definition is not None:
        flow["definition"] = definition
        flow["revision"] += 1
    flow["status"] = status or flow["status"]
    flow["valid"] = not errors
    flow["errors"] = [{"message": e} for e in errors]
    flow["warnings"] = []


def revision_of(flow):
    """The flow's current revision as Twilio's FlowRevision resource renders it."""
    fields = ("sid", "account_sid", "author_sid", "friendly_name", "definition", "status", "revision",
              "commit_message", "valid", "errors", "date_created", "date_updated")
    return {**{name: flow[name] for name in fields}, "url": f"{BASE}/{flow['sid']}/Revisions/{flow['revision']}"}


class StudioBackend:
    def __init__(self, store, account_sid):
        self.store = store
        self.account_sid = account_sid

    # --- flows and revisions -------------------------------------------------------------------------------

    def create_flow(self, friendly_name, definition, status, commit_message=None, sid=None, revision=None):
        """`sid`, `revision`: a copied flow keeps its own (`flexops sandbox import`); else a new SID, revision 1."""
        if not friendly_name:
            raise missing("FriendlyName")
        check_status(status, required=True)
        if definition is None:
            raise missing("Definition")
        sid = sid or new_sid("FW")
        url = f"{BASE}/{sid}"
        flow = {"sid": sid, "account_sid": self.account_sid, "author_sid": None, "friendly_name": friendly_name,
                "definition": None, "status": status, "revision": 0, "commit_message": commit_message,
                "date_created": now(), "date_updated": None,
                "webhook_url": f"https://webhooks.twilio.com/v1/Accounts/{self.account_sid}/Flows/{sid}", "url": url,
                "links": {"test_users": f"{url}/TestUsers", "revisions": f"{url}/Revisions",
                          "executions": f"{url}/Executions"}}
        apply_definition(flow, definition, status)
        flow["revision"] = revision or flow["revision"]
        with self.store.tx() as db:
            if not self.store.insert(db, self.account_sid, KIND, sid, flow):
                raise TwilioError(409, 20409, f"Flow {sid} already exists")
            self._keep_revision(db, flow)
        return flow

    def _keep_revision(self, db, flow):
        revision = revision_of(flow)
        key = f"{flow['sid']}:{flow['revision']}"
        if not self.store.insert(db, self.account_sid, REVISION, key, revision, parent=flow["sid"]):
            self.store.replace(db, self.account_sid, REVISION, key, revision)

    def flow(self, sid):
        found = self.store.get(self.account_sid, KIND, sid=sid)
        if found is None:
            raise not_found(f"/v2/Flows/{sid}")
        return found

    def update_flow(self, sid, status, definition=None, friendly_name=None, commit_message=None):
        """A new definition is a new revision; a status change alone updates the current revision."""
        check_status(status, required=True)
        with self.store.tx() as db:
            flow = self.flow(sid)
            apply_definition(flow, definition, status)
            if friendly_name:
                flow["friendly_name"] = friendly_name
            if commit_message is not None:
                flow["commit_message"] = commit_message
            flow["date_updated"] = now()
            self.store.replace(db, self.account_sid, KIND, sid, flow)
            self._keep_revision(db, flow)
        return flow

    def delete_flow(self, sid):
        with self.store.tx() as db:
            if not self.store.delete(db, self.account_sid, KIND, sid):
                raise not_found(f"/v2/Flows/{sid}")

    def flow_rows(self):
        return lambda after, limit: self.store.page(self.account_sid, KIND, after, limit)

    def revision(self, sid, revision):
        """`revision`: a number, `LatestRevision` or `LatestPublished` (as Twilio's path accepts)."""
        flow = self.flow(sid)
        if revision == "LatestRevision":
            number = flow["revision"]
        elif revision == "LatestPublished":
            published = [r for _, r in self.store.page(self.account_sid, REVISION, 0, 10 ** 6, parent=sid)
                         if r["status"] == "published"]
            if not published:
                raise not_found(f"/v2/Flows/{sid}/Revisions/{revision}")
            return published[-1]
        else:
            number = revision
        found = self.store.get(self.account_sid, REVISION, sid=f"{sid}:{number}")
        if found is None:
            raise not_found(f"/v2/Flows/{sid}/Revisions/{revision}")
        return found

    def revision_rows(self, sid):
        self.flow(sid)
        return lambda after, limit: self.store.page(self.account_sid, REVISION, after, limit, parent=sid)

    # --- executions and steps ------------------------------------------------------------------------------

    def new_execution(self, flow, contact_channel_address, initiated_by, context, stamp=None):
        """An execution as Twilio renders it, not stored yet: `save_execution(db, it, new=True)` stores it once its
        first steps ran (one write instead of two on the inbound path)."""
        sid, stamp = new_sid("FN"), stamp or now()
        url = f"{BASE}/{flow['sid']}/Executions/{sid}"
        execution = {"sid": sid, "account_sid": self.account_sid, "flow_sid": flow["sid"],
                     "contact_channel_address": contact_channel_address, "contact_sid": None,
                     "flow_version": flow["revision"], "context": context, "status": "active",
                     "date_created": stamp, "date_updated": stamp, "initiated_by": initiated_by, "url": url,
                     "links": {"steps": f"{url}/Steps", "execution_context": f"{url}/Context"}}
        return execution

    def save_execution(self, db, execution, new=False):
        if new:
            self.store.insert(db, self.account_sid, EXECUTION, execution["sid"], execution,
                              parent=execution["flow_sid"])
            return
        execution["date_updated"] = now()
        self.store.replace(db, self.account_sid, EXECUTION, execution["sid"], execution)

    def add_step(self, db, execution, name, widget_type, transitioned_from, transitioned_to, context, stamp=None):
        sid, stamp = new_sid("FT"), stamp or now()
        url = f"{execution['url']}/Steps/{sid}"
        step = {"sid": sid, "account_sid": self.account_sid, "flow_sid": execution["flow_sid"],
                "execution_sid": execution["sid"], "parent_step_sid": None, "name": name, "context": context,
                "transitioned_from": transitioned_from, "transitioned_to": transitioned_to, "type": widget_type,
                "date_created": stamp, "date_updated": stamp, "url": url, "links": {"step_context": f"{url}/Context"}}
        self.store.insert(db, self.account_sid, STEP, sid, step, parent=execution["sid"])
        return step

    def execution(self, flow_sid, sid):
        found = self.store.get(self.account_sid, EXECUTION, sid=sid)
        if found is None or found["flow_sid"] != flow_sid:
            raise not_found(f"/v2/Flows/{flow_sid}/Executions/{sid}")
        return found

    def execution_rows(self, flow_sid, date_created_from=None, date_created_to=None):
        self.flow(flow_sid)
        conditions = [("date_created", op, value) for op, value in ((">=", date_created_from),
                                                                     ("<=", date_created_to)) if value]
        return lambda after, limit: self.store.page(self.account_sid, EXECUTION, after, limit, parent=flow_sid,
                                                    conditions=conditions)

    def execution_context(self, flow_sid, sid):
        execution = self.execution(flow_sid, sid)
        return {"account_sid": self.account_sid, "context": execution["context"], "flow_sid": flow_sid,
                "execution_sid": sid, "url": f"{execution['url']}/Context"}

    def step(self, flow_sid, execution_sid, sid):
        self.execution(flow_sid, execution_sid)
        found = self.store.get(self.account_sid, STEP, sid=sid)
        if found is None or found["execution_sid"] != execution_sid:
            raise not_found(f"/v2/Flows/{flow_sid}/Executions/{execution_sid}/Steps/{sid}")
        return found

    def step_rows(self, flow_sid, execution_sid):
        self.execution(flow_sid, execution_sid)
        return lambda after, limit: self.store.page(self.account_sid, STEP, after, limit, parent=execution_sid)

    def step_context(self, flow_sid, execution_sid, sid):
        step = self.step(flow_sid, execution_sid, sid)
        return {"account_sid": self.account_sid, "context": step["context"], "execution_sid": execution_sid,
                "flow_sid": flow_sid, "step_sid": sid, "url": f"{step['url']}/Context"}

    # --- a conversation bound to the execution that waits for its reply ------------------------------------

    def bind(self, db, conversation_sid, execution, state_name):
        """Studio keeps the conversation's next message for the execution waiting at `state_name`."""
        data = {"execution_sid": execution["sid"], "flow_sid": execution["flow_sid"], "state": state_name}
        if not self.store.insert(db, self.account_sid, "studio_session", conversation_sid, data):
            self.store.replace(db, self.account_sid, "studio_session", conversation_sid, data)

    def unbind(self, db, conversation_sid):
        self.store.delete(db, self.account_sid, "studio_session", conversation_sid)

    def waiting(self, conversation_sid):
        """(execution, name of the state it waits in) for a conversation, or (None, None)."""
        session = self.store.get(self.account_sid, "studio_session", sid=conversation_sid)
        if session is None:
            return None, None
        execution = self.store.get(self.account_sid, EXECUTION, sid=session["execution_sid"])
        if execution is None or execution["status"] != "active":
            return None, None
        return execution, session["state"]
