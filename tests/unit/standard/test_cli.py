"""`sgx standard` exit codes and output formats."""

from __future__ import annotations

import copy
import json
import re

from click.testing import CliRunner

from sgx.cli import cli
from standard import artefacts


def test_validate_exit_codes(tmp_path, examples):
    runner = CliRunner()
    good = runner.invoke(cli, ["standard", "validate", str(artefacts.EXAMPLES)])
    assert good.exit_code == 0, good.output
    bad_message = copy.deepcopy(examples["escalation-triangulation"])
    bad_message["type"] = "history"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_message))
    result = runner.invoke(cli, ["standard", "validate", str(bad)])
    assert result.exit_code == 1
    assert "profile-fixed-value at Bundle.type" in result.output
    missing = runner.invoke(cli, ["standard", "validate", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2
    no_args = runner.invoke(cli, ["standard", "validate"])
    assert no_args.exit_code == 2


def test_validate_json_and_operationoutcome_formats(tmp_path, examples):
    message = copy.deepcopy(examples["escalation-triangulation"])
    del message["timestamp"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(message))
    runner = CliRunner()
    as_json = json.loads(runner.invoke(cli, ["standard", "validate", "--format", "json", str(path)]).stdout)
    assert as_json[0]["valid"] is False
    assert as_json[0]["findings"][0]["code"] == "profile-cardinality"
    assert as_json[0]["findings"][0]["requirements"]
    outcome = json.loads(runner.invoke(cli, ["standard", "validate", "--format", "operationoutcome",
                                             str(path)]).stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["Bundle.timestamp"]


def test_validate_refuses_a_folder_without_messages(tmp_path):
    (tmp_path / "notes.txt").write_text("not a message")
    result = CliRunner().invoke(cli, ["standard", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "no message files" in result.output and "Traceback" not in result.output


def test_operationoutcome_for_several_files_names_each_file(tmp_path, examples):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(examples["escalation-triangulation"]))
    bad_message = copy.deepcopy(examples["escalation-triangulation"])
    del bad_message["timestamp"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_message))
    result = CliRunner().invoke(cli, ["standard", "validate", "--format", "operationoutcome", str(good), str(bad)])
    assert result.exit_code == 1
    bundle = json.loads(result.stdout)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    by_file = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert set(by_file) == {good.resolve().as_uri(), bad.resolve().as_uri()}
    assert by_file[good.resolve().as_uri()]["issue"][0]["severity"] == "information"
    assert by_file[bad.resolve().as_uri()]["issue"][0]["expression"] == ["Bundle.timestamp"]


def test_build_check_passes_on_a_fresh_checkout():
    result = CliRunner().invoke(cli, ["standard", "build", "--check"])
    assert result.exit_code == 0, result.output


def test_docs_writes_a_page_per_message_with_its_legal_basis(tmp_path):
    result = CliRunner().invoke(cli, ["standard", "docs", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "message" / "serious-incident.html").read_text()
    assert "regulation 40" in page and "Who receives" in page and "As JSON" in page
    assert (tmp_path / "uk.safeguarding-exchange.r4-0.1.0.tgz").stat().st_size > 10_000
    assert (tmp_path / "schemas" / "serious-incident.schema.json").exists()


def test_docs_pages_are_markup_not_escaped_text(tmp_path):
    """Every page parses to a document whose main content has its own headings and tables, and no visible text
    shows a tag (escaped markup would read as '<h1>...' on the page)."""
    from lxml import html

    CliRunner().invoke(cli, ["standard", "docs", "--out", str(tmp_path)])
    pages = sorted(tmp_path.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        tree = html.fromstring(page.read_bytes())
        visible = " ".join(tree.xpath("//body//text()[not(ancestor::pre) and not(ancestor::code)]"))
        assert not re.search(r"</?(h1|h2|p|table|tr|td|ul|li|a|section|dl)\b", visible), page.name
        if tree.xpath("//main"):
            assert tree.xpath("//main//h1"), f"{page.name} has no heading of its own"


def test_docs_publish_the_oversight_rules_for_people_and_as_data(tmp_path):
    CliRunner().invoke(cli, ["standard", "docs", "--out", str(tmp_path)])
    page = (tmp_path / "oversight.html").read_text(encoding="utf-8")
    rules = json.loads((tmp_path / "oversight-rules.json").read_text(encoding="utf-8"))
    assert f"Oversight rules {rules['version']}" in page
    for item in (*rules["rules"], *rules["clocks"]):
        assert f'id="{item["id"]}"' in page
    assert (tmp_path / "oversight-rules.schema.json").exists()
