"""Gate rules: grammar, TOML files, evaluation, exit codes and alert hooks."""

import json
import math
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from support import analytics_synth as synthetic

from rustorch_tools.analytics.gates import RuleError, load_rules_file, parse_rule
from rustorch_tools.cli import cli


def test_parse_rule_forms():
    r = parse_rule("val_acc >= -0.5%")
    assert (r.metric, r.kind, r.op, r.threshold, r.relative) == ("val_acc", "final", ">=", -0.5, True)
    r = parse_rule("mean( step_time_ms )<=+10%")
    assert (r.metric, r.kind, r.op, r.threshold, r.relative) == ("step_time_ms", "mean", "<=", 10.0, True)
    r = parse_rule("best(loss) < 0.01")
    assert (r.kind, r.op, r.threshold, r.relative) == ("best", "<", 0.01, False)
    r = parse_rule("max(device/ops/aten::mm/fallback) == 0")
    assert r.metric == "device/ops/aten::mm/fallback" and r.op == "=="
    r = parse_rule("min(val loss) > -1e-3")
    assert r.metric == "val loss" and r.threshold == -0.001


@pytest.mark.parametrize("bad", ["", "val_acc", "val_acc >= ", "val_acc => 1", "median(x) > 1", "x > 1e999",
                                 "x >= 1%%", "x >= abc", ">= 1", "x ~ 1"])
def test_parse_rule_rejects_with_grammar(bad):
    with pytest.raises(RuleError) as info:
        parse_rule(bad)
    assert "expected" in str(info.value)


def test_rules_file_strings_and_tables(tmp_path):
    f = tmp_path / "rules.toml"
    f.write_text('rules = ["val_acc >= -0.5%"]\n'
                 '[[rule]]\nmetric = "step_time_ms"\nvalue = "mean"\nop = "<="\nthreshold = "+10%"\n'
                 '[[rule]]\nmetric = "loss"\nop = "<="\nthreshold = 0.01\n'
                 '[[rule]]\nrule = "best(loss) <= 0"\n')
    rules = load_rules_file(f)
    assert [(r.metric, r.kind, r.op, r.threshold, r.relative) for r in rules] == [
        ("val_acc", "final", ">=", -0.5, True), ("step_time_ms", "mean", "<=", 10.0, True),
        ("loss", "final", "<=", 0.01, False), ("loss", "best", "<=", 0.0, False)]


@pytest.mark.parametrize("text,msg", [
    ("rules = 3", "list"), ('[[rule]]\nmetric = "x"\nop = ">="\n', "missing"),
    ('[[rule]]\nmetric = "x"\nop = "~"\nthreshold = 1\n', "op"),
    ('[[rule]]\nmetric = "x"\nop = ">="\nthreshold = 1\ncolour = 2\n', "unknown"),
    ('[[rule]]\nmetric = "x"\nop = ">="\nthreshold = "1%"\nrelative = false\n', "disagrees"),
    ("other = 1", "unknown top-level"), ("rules = [", "TOML"), ("", "no rules"),
])
def test_rules_file_errors(tmp_path, text, msg):
    f = tmp_path / "rules.toml"
    f.write_text(text)
    with pytest.raises(RuleError, match=msg):
        load_rules_file(f)


@pytest.fixture
def pair(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    synthetic.write_run(root, synthetic.run_doc("base"), synthetic.training_rows(100))
    synthetic.write_run(root, synthetic.run_doc("cand"), synthetic.training_rows(
        100, final_acc=0.94, step_time_ms=13.0))
    rows = synthetic.training_rows(100)
    rows[-1]["loss"] = math.nan
    synthetic.write_run(root, synthetic.run_doc("nanrun"), rows)
    return root


def gate(root, *args):
    return CliRunner().invoke(cli, ["gate", *args, "--runs-dir", str(root)])


def test_gate_passes_and_fails_with_exit_codes(pair):
    ok = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= -2%", "--rule",
              "mean(step_time_ms) <= +10%", "--json")
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["passed"] and doc["failed"] == 0 and len(doc["rules"]) == 2
    assert doc["rules"][1]["rel_pct"] == pytest.approx(100 / 12, rel=1e-3)

    bad = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= -0.5%",
               "--rule", "step_time_ms <= +5%", "--rule", "val_acc >= -1")
    assert bad.exit_code == 1
    assert "gate FAILED" in bad.stdout
    assert bad.stdout.count("[FAIL]") == 2 and bad.stdout.count("[ok]") == 1


def test_gate_absolute_delta_and_kinds(pair):
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= -0.009", "--json")
    doc = json.loads(res.stdout)
    r = doc["rules"][0]
    assert r["delta"] == pytest.approx(r["candidate"] - r["baseline"])
    assert r["passed"] == (r["delta"] >= -0.009)
    assert res.exit_code == (0 if r["passed"] else 1)
    res = gate(pair, "cand", "--baseline", "base", "--rule", "max(val_acc) >= -1%", "--json")
    assert json.loads(res.stdout)["rules"][0]["value"] == "max"


def test_gate_missing_metric_and_nonfinite_are_violations(pair):
    res = gate(pair, "cand", "--baseline", "base", "--rule", "nope >= 0", "--json")
    assert res.exit_code == 1
    assert "not logged" in json.loads(res.stdout)["rules"][0]["message"]
    res = gate(pair, "nanrun", "--baseline", "base", "--rule", "loss <= +100%", "--json")
    assert res.exit_code == 1
    assert "not finite" in json.loads(res.stdout)["rules"][0]["message"]


def test_gate_usage_errors_exit_2(pair, tmp_path):
    assert gate(pair, "cand", "--baseline", "base").exit_code == 2  # no rules
    assert gate(pair, "cand", "--baseline", "base", "--rule", "x >>= 1").exit_code == 2
    assert gate(pair, "ghost", "--baseline", "base", "--rule", "loss <= 0").exit_code == 2
    bad = tmp_path / "r.toml"
    bad.write_text("rules = [1]")
    res = gate(pair, "cand", "--baseline", "base", "--rules", str(bad))
    assert res.exit_code == 2 and "rules[0]" in res.output


def test_on_fail_exec_gets_payload_on_stdin_and_env(pair, tmp_path):
    out = tmp_path / "hook.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        "payload = json.load(sys.stdin)\n"
        f"open({str(out)!r}, 'w').write(json.dumps({{'payload': payload, "
        "'env': [os.environ['RUSTORCH_GATE_RUN'], os.environ['RUSTORCH_GATE_FAILED']]}))\n")
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= 0",
               "--on-fail-exec", f"{sys.executable} {script}", "--json")
    assert res.exit_code == 1
    got = json.loads(out.read_text())
    assert got["env"] == ["cand", "1"]
    assert got["payload"]["run"] == "cand" and got["payload"]["passed"] is False
    assert json.loads(res.stdout)["hooks"][0]["ok"] is True
    # Not run when the gate passes.
    out.unlink()
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= -50%",
               "--on-fail-exec", f"{sys.executable} {script}")
    assert res.exit_code == 0 and not out.exists()


def test_failing_hooks_are_reported_not_fatal(pair):
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= 0", "--json",
               "--on-fail-exec", "/nonexistent/hook", "--on-fail-exec", f"{sys.executable} -c 'import sys; sys.exit(3)'",
               "--on-fail-webhook", "http://127.0.0.1:9/none", "--on-fail-webhook", "file:///etc/passwd",
               "--hook-timeout", "2")
    assert res.exit_code == 1
    hooks = json.loads(res.stdout)["hooks"]
    assert [h["ok"] for h in hooks] == [False] * 4
    assert "not found" in hooks[0]["error"] and "status 3" in hooks[1]["error"]
    assert "not delivered" in hooks[2]["error"] and "scheme" in hooks[3]["error"]
    assert res.output.count("warning:") == 4


class _Recorder(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Recorder.received = []
    _Recorder.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Recorder
    server.shutdown()
    server.server_close()


def test_webhook_posts_json_payload(pair, webhook_server):
    url, recorder = webhook_server
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= 0",
               "--on-fail-webhook", url, "--json")
    assert res.exit_code == 1
    assert len(recorder.received) == 1
    ctype, payload = recorder.received[0]
    assert ctype == "application/json"
    assert payload["run"] == "cand" and payload["failed"] == 1
    assert payload["rules"][0]["rule"] == "val_acc >= 0"
    assert json.loads(res.stdout)["hooks"] == [{"kind": "webhook", "target": url, "ok": True,
                                                "status": 200}]
    recorder.status = 500
    res = gate(pair, "cand", "--baseline", "base", "--rule", "val_acc >= 0",
               "--on-fail-webhook", url, "--json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["hooks"][0]["error"].startswith("HTTP 500")


@given(st.text(max_size=40))
def test_parse_rule_never_raises_anything_but_rule_error(text):
    try:
        rule = parse_rule(text)
    except RuleError:
        return
    assert rule.op in (">=", "<=", ">", "<", "==") and math.isfinite(rule.threshold)
    assert rule.metric and rule.metric == rule.metric.strip()
