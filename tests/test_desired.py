"""Desired-state files: YAML and CSV read alike; every schema problem is reported at once with line and field;
page ids stay strings; Studio flows are resolved by name against the account."""
from pathlib import Path

import pytest

from flexops import desired
from flexops.desired import DesiredStateError
from flexops.exceptions import ValidationError

ROOT = Path(__file__).resolve().parents[1]
DEMO_PAGES = ["104738392011234", "204738392011235", "304738392011236"]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(exc):
    return {(p.line, p.field) for p in exc.errors}


def test_example_yaml_and_csv_describe_the_same_addresses():
    from_yaml = desired.load(ROOT / "examples" / "inventory.yaml")
    from_csv = desired.load(ROOT / "examples" / "inventory.csv")
    assert [e.page_id for e in from_yaml.entries] == DEMO_PAGES == [e.page_id for e in from_csv.entries]
    assert from_yaml.prune is False and from_csv.prune is False
    for a, b in zip(from_yaml.entries, from_csv.entries):
        assert a.studio_flow == b.studio_flow == "Messaging Flow"
        spec_a, spec_b = a.spec("FW" + "a" * 32), b.spec("FW" + "a" * 32)
        assert spec_a == spec_b
    assert from_yaml.entries[1].spec("FW" + "a" * 32).retry_count == 1  # row value wins over the default


def test_the_commented_webhook_example_is_valid(tmp_path):
    lines = (ROOT / "examples" / "inventory.yaml").read_text().splitlines()
    start = lines.index("# A page served by a webhook instead of Studio:") + 1
    path = write(tmp_path, "webhook.yaml", "\n".join(lines[:start] + [line[1:] for line in lines[start:]]))
    spec = desired.load(path).entries[-1].spec()
    assert spec.integration == "webhook" and spec.webhook_filters == ("onMessageAdded",)
    assert spec.retry_count is None and spec.studio_flow_sid is None  # the studio defaults do not apply to it


def test_all_yaml_problems_at_once_with_line_and_field(tmp_path):
    path = write(tmp_path, "bad.yaml", """\
prune: maybe
defaults:
  studio_flow: Messaging Flow
  retry_count: 9
addresses:
  - page_id: 0123456
    friendly_name: leading zero lost
  - page_id: "204738392011235"
    integration: webhook
    webhook_url: http://insecure.example
    webhook_method: PUT
    colour: red
  - page_id: 204738392011235
  - friendly_name: no page id
  - page_id: "55555"
    conversation_service_sid: IS123
    retry_count: 1
color: blue
""")
    with pytest.raises(DesiredStateError) as caught:
        desired.load(path)
    exc = caught.value
    assert isinstance(exc, ValidationError) and exc.parameter == "inventory"
    assert problems(exc) == {
        (1, "prune"), (4, "defaults.retry_count"), (6, "page_id"), (10, "webhook_url"), (11, "webhook_method"),
        (12, "colour"), (13, "page_id"), (14, "page_id"), (16, "conversation_service_sid"), (18, "color")}
    text = str(exc)
    assert f"{path}:6 (entry 1): page_id: write page ids in quotes" in text
    assert "duplicate page id 204738392011235 (first on line 8)" in text
    assert "defaults.retry_count: must be a whole number from 0 to 3" in text
    assert text.count("defaults.retry_count") == 1  # a bad default is reported once, not once per row
    assert "webhook_url: must use https:// (got 'http://insecure.example')" in text
    assert "allow_insecure_webhook" not in text  # not something a desired-state file can set


def test_page_ids_stay_strings_and_unquoted_digits_are_accepted(tmp_path):
    path = write(tmp_path, "ids.yaml", """\
addresses:
  - {page_id: 104738392011234, studio_flow: Messaging Flow}
  - {page_id: "0012345", studio_flow: Messaging Flow}
  - {page_id: "messenger:304738392011236", studio_flow: Messaging Flow}
""")
    state = desired.load(path)
    assert [e.page_id for e in state.entries] == ["104738392011234", "0012345", "304738392011236"]
    assert all(isinstance(e.page_id, str) for e in state.entries)
    assert state.addresses == {"messenger:104738392011234", "messenger:0012345", "messenger:304738392011236"}


def test_yaml_number_guesses_do_not_leak_into_text_fields(tmp_path):
    path = write(tmp_path, "text.yaml", """\
addresses:
  - {page_id: "12345", friendly_name: 0123, studio_flow: "FW%s"}
  - {page_id: "23456", friendly_name: yes, integration: webhook, webhook_url: "https://h.example/x",
     webhook_filters: [onMessageAdded, onParticipantAdded]}
""" % ("b" * 32))
    first, second = desired.load(path).entries
    assert first.params["friendly_name"] == "0123" and first.studio_flow == "FW" + "b" * 32
    spec = second.spec()
    assert spec.friendly_name == "yes" and spec.webhook_filters == ("onMessageAdded", "onParticipantAdded")


def test_defaults_apply_only_to_their_integration(tmp_path):
    path = write(tmp_path, "defaults.yaml", """\
prune: true
defaults:
  studio_flow: Messaging Flow
  retry_count: 2
  webhook_method: GET
addresses:
  - page_id: "11111"
  - page_id: "22222"
    integration: webhook
    webhook_url: https://hooks.example/flex
""")
    state = desired.load(path)
    studio, webhook = state.entries
    assert state.prune is True
    assert studio.studio_flow == "Messaging Flow" and studio.params["retry_count"] == 2
    assert "webhook_method" not in studio.params
    spec = webhook.spec()
    assert spec.integration == "webhook" and spec.webhook_method == "GET" and spec.studio_flow_sid is None
    assert desired.load(path, prune=False).prune is False


def test_all_csv_problems_at_once_with_row_line_and_field(tmp_path):
    path = write(tmp_path, "bad.csv", "page_id,friendly_name,studio_flow,retry_count,colour\n"
                                      "104738392011234,ok,Messaging Flow,3,\n"
                                      "abc,letters,Messaging Flow,1,\n"
                                      "\n"
                                      "204738392011235,,Messaging Flow,five,\n"
                                      "104738392011234,dup,Messaging Flow,,\n"
                                      "0123,short,,,\n")
    with pytest.raises(DesiredStateError) as caught:
        desired.load(path)
    assert problems(caught.value) == {(1, "colour"), (3, "page_id"), (5, "retry_count"), (6, "page_id"),
                                      (7, "page_id"), (7, "studio_flow")}
    rows = {(p.line, p.field): p.row for p in caught.value.errors}
    assert rows[(5, "retry_count")] == 3  # the blank line is not a row
    assert "(got '0123')" in str(caught.value)  # CSV keeps the text: the zero is not lost, it is too short


def test_csv_webhook_filters_and_leading_zero_ids_survive(tmp_path):
    path = write(tmp_path, "ok.csv", "page_id,integration,webhook_url,webhook_filters\n"
                                     "0012345,webhook,https://h.example/x,onMessageAdded;onParticipantAdded\n")
    (entry,) = desired.load(path).entries
    assert entry.page_id == "0012345"
    assert entry.spec().webhook_filters == ("onMessageAdded", "onParticipantAdded")


@pytest.mark.parametrize("text, line, field", [
    ("addresses:\n  - page_id: '1\n", None, "(file)"),
    ("prune: false\n", 1, "addresses"),
    ("addresses: {page_id: '12345'}\n", 1, "addresses"),
    ("addresses:\n  - just text\n", 2, "(entry)"),
])
def test_structure_problems(tmp_path, text, line, field):
    with pytest.raises(DesiredStateError) as caught:
        desired.load(write(tmp_path, "s.yaml", text))
    (problem,) = caught.value.errors
    assert problem.field == field and (line is None or problem.line == line)


def test_bad_file_names_are_validation_errors(tmp_path):
    with pytest.raises(ValidationError, match="inventory: file not found"):
        desired.load(tmp_path / "missing.yaml")
    with pytest.raises(ValidationError, match="must be a .yaml, .yml or .csv file"):
        desired.load(write(tmp_path, "inv.txt", "x"))


def test_flow_names_resolve_against_the_account_and_unknown_ones_are_all_reported(tmp_path, sandbox, client):
    flow_sid = sandbox.demo["messaging_flow_sid"]
    ok = desired.load(write(tmp_path, "ok.yaml", f"""\
addresses:
  - {{page_id: "11111", studio_flow: Messaging Flow}}
  - {{page_id: "22222", studio_flow: messaging flow}}
  - {{page_id: "33333", studio_flow: {flow_sid}}}
"""))
    specs = [spec for _, spec in desired.resolve(client, ok)]
    assert [s.studio_flow_sid for s in specs] == [flow_sid] * 3
    bad = desired.load(write(tmp_path, "bad.yaml", f"""\
addresses:
  - {{page_id: "11111", studio_flow: No Such Flow}}
  - {{page_id: "22222", studio_flow: Messaging Flow}}
  - {{page_id: "33333", studio_flow: FW{'0' * 32}}}
"""))
    with pytest.raises(DesiredStateError) as caught:
        desired.resolve(client, bad)
    assert problems(caught.value) == {(2, "studio_flow"), (4, "studio_flow")}
    assert "'Messaging Flow'" in str(caught.value)  # the message lists the flows that do exist
