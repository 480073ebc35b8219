"""inventory: collect over the real SDK against the sandbox, schema/dtypes, load() round trips, diff()."""
import threading

import pandas as pd

import pytest

from flexops import inventory, report_io
from flexops.exceptions import TwilioCallFailed, ValidationError
from flexops.settings import mask_sid

MISSING_FLOW = "FW" + "0" * 32


def make(client, address, kind="messenger", **options):
    return client.conversations.v1.address_configurations.create(type=kind, address=address, **options)


@pytest.fixture
def mixed(sandbox, client):
    """Three addresses: Messenger on the demo Studio flow, Messenger on a webhook, SMS on a deleted flow."""
    make(client, "messenger:104738392011234", friendly_name="Acme Outdoor Gear", auto_creation_enabled=True,
         auto_creation_type="studio", auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"],
         auto_creation_studio_retry_count=3)
    make(client, "messenger:204738392011235", friendly_name="Acme Support", auto_creation_enabled=True,
         auto_creation_type="webhook", auto_creation_webhook_url="https://hooks.example.com/in",
         auto_creation_webhook_method="post", auto_creation_webhook_filters=["onMessageAdded", "onConversationUpdated"])
    make(client, "+15551230000", kind="sms", auto_creation_type="studio", auto_creation_studio_flow_sid=MISSING_FLOW)
    return client


def requests_to(client, fragment):
    """Record (method, url, params) of every call whose URL contains `fragment`."""
    seen = []
    client.http_client.listeners.append(
        lambda method, url, params, **_: seen.append((method, url, params)) if fragment in url else None)
    return seen


def test_columns_dtypes_and_values(sandbox, mixed):
    df = inventory.collect(mixed, progress=False)
    assert tuple(df.columns) == inventory.COLUMNS
    assert {c: str(t) for c, t in df.dtypes.items()} == inventory.DTYPES
    rows = df.set_index("address")
    studio = rows.loc["messenger:104738392011234"]
    assert studio["page_id"] == "104738392011234"
    assert (studio["integration"], studio["studio_flow_name"], studio["studio_flow_status"]) == \
        ("studio", "Messaging Flow", "published")
    assert studio["retry_count"] == 3 and bool(studio["auto_creation_enabled"]) is True
    hook = rows.loc["messenger:204738392011235"]
    assert hook["webhook_filters"] == "onConversationUpdated;onMessageAdded" and hook["webhook_method"] == "POST"
    assert pd.isna(hook["studio_flow_sid"]) and pd.isna(hook["retry_count"])
    sms = rows.loc["+15551230000"]
    assert pd.isna(sms["page_id"]) and sms["studio_flow_status"] == "missing" and pd.isna(sms["studio_flow_name"])
    assert set(df["account"]) == {mask_sid(sandbox.demo["account_sid"])}
    assert sandbox.demo["account_sid"] not in df.to_csv()  # masked, never the full SID
    assert df["generated_at"].nunique() == 1 and df["verification"].isna().all()
    assert df.attrs["flexops"]["list_pages"] == 1 and df.attrs["flexops"]["target"]["kind"] == "sandbox"


def test_empty_account_keeps_schema(sandbox):
    other = sandbox.control.create_account("empty")
    df = inventory.collect(sandbox.client(other["account_sid"]), progress=False)
    assert df.empty and tuple(df.columns) == inventory.COLUMNS
    assert {c: str(t) for c, t in df.dtypes.items()} == inventory.DTYPES


def test_each_flow_fetched_once(sandbox, client):
    for n in range(6):
        make(client, f"messenger:9000000{n}", auto_creation_type="studio",
             auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"])
    make(client, "messenger:90000099", auto_creation_type="studio", auto_creation_studio_flow_sid=MISSING_FLOW)
    flows = requests_to(client, "studio.twilio.com")
    df = inventory.collect(client, progress=False)
    assert sorted(url.rsplit("/", 1)[1] for _, url, _ in flows) == sorted(
        [sandbox.demo["messaging_flow_sid"], MISSING_FLOW])
    assert (df["studio_flow_name"] == "Messaging Flow").sum() == 6


class InFlight:
    """An http listener counting the calls to `fragment` that are in flight at once."""

    def __init__(self, fragment):
        self.fragment, self.now, self.most = fragment, 0, 0
        self.lock = threading.Lock()

    def before(self, url, **_):
        if self.fragment in url:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)

    def __call__(self, url, **_):
        if self.fragment in url:
            with self.lock:
                self.now -= 1


def test_flows_are_fetched_concurrently(sandbox, client):
    definition = client.studio.v2.flows(sandbox.demo["messaging_flow_sid"]).fetch().definition
    for n in range(4):
        flow = client.studio.v2.flows.create(friendly_name=f"Flow {n}", status="published", definition=definition)
        make(client, f"messenger:8000000{n}", auto_creation_type="studio", auto_creation_studio_flow_sid=flow.sid)
    sandbox.control.add_fault(product="studio", method="GET", action="latency", latency_ms=400)
    flights = InFlight("/Flows/FW")
    client.http_client.listeners.append(flights)
    df = inventory.collect(client, progress=False)
    assert flights.most >= 4, "the 4 flows (400 ms each) must be fetched at the same time, not one after another"
    assert sorted(df["studio_flow_name"]) == [f"Flow {n}" for n in range(4)]


def test_types_filter_is_server_side(mixed):
    listed = requests_to(mixed, "/Configuration/Addresses")
    df = inventory.collect(mixed, types="sms, messenger", progress=False)
    assert sorted(df["type"]) == ["messenger", "messenger", "sms"]
    assert [p.get("Type") for _, _, p in listed] == ["sms", "messenger"]
    only = inventory.collect(mixed, types=["sms"], progress=False)
    assert list(only["address"]) == ["+15551230000"]


@pytest.mark.parametrize("types", ["fax", ["messenger", "pigeon"], ""])
def test_bad_types_refused_before_any_call(client, types):
    before = client.http_client.request_count
    with pytest.raises(ValidationError) as err:
        inventory.collect(client, types=types, progress=False)
    assert err.value.parameter == "types" and client.http_client.request_count == before


def test_verification_join_is_generic(mixed):
    def verify(client, df):
        assert client is mixed and len(df) == 3
        return {"messenger:104738392011234": "pass", "+15551230000": "fail"}

    df = inventory.collect(mixed, progress=False, verify=verify).set_index("address")
    assert df.loc["messenger:104738392011234", "verification"] == "pass"
    assert df.loc["+15551230000", "verification"] == "fail"
    assert pd.isna(df.loc["messenger:204738392011235", "verification"])
    with pytest.raises(ValidationError) as err:
        inventory.collect(mixed, verify="yes", progress=False)
    assert err.value.parameter == "verify"


def test_transient_errors_retried_permanent_ones_named(sandbox, mixed):
    sandbox.control.add_fault(product="conversations", method="GET", path="/Configuration/Addresses$",
                              status=503, code=20503, times=1)
    assert len(inventory.collect(mixed, progress=False)) == 3
    sandbox.control.add_fault(product="conversations", method="GET", path="/Configuration/Addresses$",
                              status=403, code=20403, message="Forbidden", times=1)
    with pytest.raises(TwilioCallFailed) as err:
        inventory.collect(mixed, progress=False)
    assert err.value.status == 403 and "address configurations" in str(err.value)


# --- load ----------------------------------------------------------------------------------------------------

def test_load_round_trips_every_format(tmp_path, mixed):
    from flexops import reports

    make(mixed, "messenger:304738392011236", friendly_name='=HYPERLINK("http://x","y") 😀 שלום 中文')
    df = inventory.collect(mixed, progress=False)
    written = reports.export(df, tmp_path / "run" / "report", formats=("csv", "json", "xlsx"))
    for fmt, path in written.items():
        back = report_io.load(path)
        assert {c: str(t) for c, t in back.dtypes.items()} == inventory.DTYPES, fmt
        pd.testing.assert_frame_equal(back, df, check_dtype=True, obj=fmt)
    from_folder = report_io.load(tmp_path / "run")  # a run folder: the report is found inside
    assert from_folder.attrs["flexops"]["loaded_from"].endswith("inventory.json")


def test_load_refuses_bad_paths(tmp_path):
    with pytest.raises(ValidationError, match="path: does not exist"):
        report_io.load(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no inventory.json"):
        report_io.load(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValidationError, match="must be a .csv"):
        report_io.load(tmp_path / "notes.txt")


# --- diff ----------------------------------------------------------------------------------------------------

def test_diff_added_removed_changed_unchanged(sandbox, mixed):
    configs = mixed.conversations.v1.address_configurations
    before = inventory.collect(mixed, progress=False)
    configs("messenger:204738392011235").update(friendly_name="Acme Support (EU)",
                                               auto_creation_webhook_url="https://hooks.example.com/eu")
    configs("+15551230000").delete()
    make(mixed, "messenger:404738392011237", friendly_name="Acme Careers")
    old_sid = before.set_index("address").loc["messenger:104738392011234", "sid"]
    configs(old_sid).delete()  # re-created with the same settings: a new SID is not a change
    make(mixed, "messenger:104738392011234", friendly_name="Acme Outdoor Gear", auto_creation_enabled=True,
         auto_creation_type="studio", auto_creation_studio_flow_sid=sandbox.demo["messaging_flow_sid"],
         auto_creation_studio_retry_count=3)
    after = inventory.collect(mixed, progress=False)

    changes = inventory.diff(before, after)
    assert changes.counts == {"added": 1, "removed": 1, "changed": 1, "unchanged": 1}
    assert [a["address"] for a in changes.added] == ["messenger:404738392011237"]
    assert [r["address"] for r in changes.removed] == ["+15551230000"]
    assert changes.changed == [{"address": "messenger:204738392011235", "fields": {
        "friendly_name": ("Acme Support", "Acme Support (EU)"),
        "webhook_url": ("https://hooks.example.com/in", "https://hooks.example.com/eu")}}]
    assert changes and changes.to_dict()["changed"][0]["fields"]["friendly_name"] == ["Acme Support",
                                                                                      "Acme Support (EU)"]


def test_diff_ignores_dates_and_generation(mixed):
    df = inventory.collect(mixed, progress=False)
    later = df.copy()
    later["date_updated"] = pd.Timestamp("2030-01-01", tz="UTC")
    later["generated_at"] = pd.Timestamp("2030-01-01", tz="UTC")
    later["studio_flow_status"] = "draft"  # derived flow state, not the address configuration
    changes = inventory.diff(df, later)
    assert not changes and changes.counts == {"added": 0, "removed": 0, "changed": 0, "unchanged": 3}
    with pytest.raises(ValidationError) as err:
        inventory.diff(df, later, fields=("nope",))
    assert err.value.parameter == "fields"


def test_diff_against_empty(mixed):
    df = inventory.collect(mixed, progress=False)
    empty = inventory.frame([])
    assert inventory.diff(empty, df).counts == {"added": 3, "removed": 0, "changed": 0, "unchanged": 0}
    assert inventory.diff(df, empty).counts == {"added": 0, "removed": 3, "changed": 0, "unchanged": 0}


@pytest.mark.parametrize("name, content", [("bad.json", "{not json"), ("list.json", '{"records": [1, 2]}'),
                                           ("other.csv", "a,b\n1,2\n"), ("empty.csv", ""),
                                           ("broken.xlsx", "not a zip")])
def test_load_refuses_files_that_are_not_reports(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(ValidationError) as err:
        report_io.load(tmp_path / name)
    assert err.value.parameter == "path"


def test_load_from_a_folder_of_reports_takes_the_newest(tmp_path, mixed):
    import os

    from flexops import reports

    df = inventory.collect(mixed, progress=False)
    older = reports.export(df, tmp_path / "reports" / "old", formats="json,csv")
    newer = reports.export(df.iloc[:1], tmp_path / "reports" / "new", formats="csv")  # no JSON in the newest
    for path in older.values():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    back = report_io.load(tmp_path / "reports")
    assert back.attrs["flexops"]["loaded_from"] == str(newer["csv"]) and len(back) == 1
    assert report_io.load(tmp_path / "reports" / "old").attrs["flexops"]["loaded_from"].endswith("inventory.json")


def test_diff_compares_only_the_types_both_inventories_listed(tmp_path, mixed):
    from flexops import reports

    everything = inventory.collect(mixed, progress=False)
    messenger = inventory.collect(mixed, types="messenger", progress=False)
    for old, new in ((everything, messenger), (messenger, everything)):
        changes = inventory.diff(old, new)
        assert changes.counts == {"added": 0, "removed": 0, "changed": 0, "unchanged": 2}
        assert changes.types == ["messenger"] and changes.to_dict()["types"] == ["messenger"]
    assert inventory.diff(everything, everything).types is None
    # a report file keeps the scope in its JSON metadata; a CSV has none, so only the other side's scope applies
    files = reports.export(messenger, tmp_path, formats="json,csv")
    assert inventory.diff(report_io.load(files["json"]), everything).counts["added"] == 0
    assert inventory.diff(report_io.load(files["csv"]), everything).counts["added"] == 1  # the SMS address looks new
    assert inventory.diff(everything, report_io.load(files["csv"])).counts["removed"] == 1
    assert inventory.diff(report_io.load(files["csv"]), messenger).types == ["messenger"]


def test_docs_describe_every_column_and_dtype():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    table = text.split("## Columns", 1)[1].split("\n\n")[2]
    documented = [tuple(cell.strip(" `") for cell in line.strip("|").split("|")[:2])
                  for line in table.splitlines()[2:]]
    assert documented == [(column, inventory.DTYPES[column]) for column in inventory.COLUMNS]
