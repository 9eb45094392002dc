"""The ghostcap command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import cli
from analyzer.decoders.mrec import MREC_NAMES
from analyzer.report.dispatch import cli_line
from tests import pcapbuild as pb
from tests.conftest import EXTERNAL

MISSING_SYN = EXTERNAL / "tcp" / "zeek__missing-syn.pcap"


def invoke(*args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False, prog_name="ghostcap")


def test_every_command_has_help_with_an_example() -> None:
    for name, command in cli.commands.items():
        assert command.help, name
        assert "Example: ghostcap " + name in command.help


def test_flows_table() -> None:
    res = invoke("flows", str(MISSING_SYN))
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0] == "zeek__missing-syn.pcap: pcap, EN10MB, 21 packets, 1 flows"
    assert lines[2].split()[:5] == ["#", "stream", "proto", "client", "server"]
    assert lines[3].split() == [
        "0",
        "0",
        "tcp",
        "141.42.64.125:56730",
        "125.190.109.199:80",
        "11",
        "10",
        "98",
        "9417",
        "SF",
        "hADdFaf",
        "-",
    ]


def test_flows_json_is_one_document_with_a_flow_per_line() -> None:
    res = invoke("flows", str(MISSING_SYN), "--format", "json")
    doc = json.loads(res.output)
    assert doc["schema"] == "ghostcap.flows/1"
    assert doc["capture"]["packets"] == 21
    assert doc["capture"]["first"] == "2005-10-07T23:23:55.633408000Z"
    (flow,) = doc["flows"]
    assert flow["stream_bytes"] == {"to_server": 98, "to_client": 9417}
    assert flow["state"] == "SF"
    assert len(res.output.splitlines()) == 3


def test_not_a_capture_is_one_line_and_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("<html><body>login</body></html>")
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", str(bad)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr == "error: notes.pcap: not a packet capture (pcap or pcapng); it looks like an HTML document\n"


def test_damaged_capture_gives_partial_result_and_a_warning(tmp_path: Path) -> None:
    frames = [pb.ether(pb.ipv4("10.0.0.1", "10.0.0.2", 17, pb.udp(1000 + i, 53, b"q"))) for i in range(3)]
    path = tmp_path / "killed.pcap"
    path.write_bytes(pb.pcap([(0, f) for f in frames])[:-3])
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "warning: capture cut short: frame 3" in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["capture"]["packets"] == 2
    assert len(doc["flows"]) == 2
    assert doc["capture"]["warnings"][0].startswith("capture cut short")


def test_standard_input() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "flows", "-"],
        input=MISSING_SYN.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith(b"-: pcap, EN10MB, 21 packets, 1 flows")


# -- timeline, analyze, catalogue -------------------------------------------------------------------------------

LAB = Path(__file__).parents[1] / "captures"


def test_timeline_table_shows_the_callerror_frame() -> None:
    res = invoke("timeline", str(LAB / "ocpp_boot_callerror.pcap"))
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0].split()[:7] == ["time", "(UTC)", "frame", "stream", "charger", "layer", "event"]
    errors = [ln for ln in lines if " ocpp.call_error " in ln]
    assert len(errors) == 1
    assert errors[0].split()[1:5] == ["13", "tcp", "0", "CP-WHISKEY-40"]


def test_timeline_json_lines_carry_fields_and_hide_tokens() -> None:
    res = invoke("timeline", str(LAB / "ocpp_auth_rejected.pcap"), "--format", "json")
    rows = [json.loads(x) for x in res.output.splitlines()]
    assert {"time", "frame", "flow", "direction", "layer", "event", "summary", "fields"} <= set(rows[0])
    auth = [r for r in rows if r["event"] == "ocpp.call" and r["fields"]["action"] == "Authorize"]
    assert auth[0]["fields"]["payload"]["idToken"] == {"idToken": "«redacted»", "type": "ISO14443"}
    assert "04A2B3C4D5E6" not in res.output  # nor in the WebSocket message's excerpt and summary
    shown = invoke("timeline", str(LAB / "ocpp_auth_rejected.pcap"), "--format", "json", "--show-tokens")
    auth = [json.loads(x) for x in shown.output.splitlines() if '"Authorize"' in x and '"ocpp.call"' in x]
    assert auth[0]["fields"]["payload"]["idToken"]["idToken"] == "04A2B3C4D5E6"
    table = invoke("timeline", str(LAB / "ocpp_auth_rejected.pcap")).output
    assert "Authorize" in table
    assert "04A2B3C4D5E6" not in table


def test_analyze_writes_reports_and_exit_status_says_fault(tmp_path: Path) -> None:
    res = invoke("analyze", str(LAB / "tcp_refused.pcap"), "-o", str(tmp_path), "--format", "json,md")
    assert res.exit_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tcp_refused.json", "tcp_refused.md"]
    report = json.loads((tmp_path / "tcp_refused.json").read_text())
    assert report["chargers"][0]["root_cause"]["fault"] == "tcp.refused"
    md = (tmp_path / "tcp_refused.md").read_text()
    assert "- **Who acts:** **CSMS**\n- **Site visit:** no\n" in md
    cap = str(LAB / "tcp_refused.pcap")
    assert res.stdout == f"{cap}: 127.0.0.1 fault tcp.refused @6 CX013 NoInternet fix:csms\n"
    assert res.stderr == f"{cap}: wrote {tmp_path / 'tcp_refused.json'}, {tmp_path / 'tcp_refused.md'}\n"


def test_analyze_healthy_exits_0_and_prints_json_to_stdout() -> None:
    res = invoke("analyze", str(LAB / "healthy_201_ws.pcap"), "-o", "-")
    assert res.exit_code == 0
    report = json.loads(res.stdout)
    assert [c["verdict"] for c in report["chargers"]] == ["healthy"]
    assert res.stderr == f"{LAB / 'healthy_201_ws.pcap'}: CS-BRAVO-201 healthy\n"  # the line moves to stderr
    assert invoke("analyze", str(LAB / "healthy_201_ws.pcap"), "-o", "-", "-q").stderr == ""
    assert json.loads(invoke("analyze", str(LAB / "healthy_201_ws.pcap"), "-o", "-", "--format", "json").stdout)


def test_analyze_unreadable_input_exits_3_and_still_does_the_rest(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pcap"
    junk.write_text("this is not a capture\n")
    res = invoke("analyze", str(junk), str(LAB / "http_not_found.pcap"), "-o", str(tmp_path), "--format", "json")
    assert res.exit_code == 3
    assert "error: " in res.stderr
    assert "Traceback" not in res.output
    assert (tmp_path / "http_not_found.json").exists()


def test_analyze_truncated_capture_reports_what_it_could_read(tmp_path: Path) -> None:
    whole = (LAB / "http_unauthorized.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 40])
    res = invoke("analyze", str(cut), "-o", str(tmp_path), "--format", "json")
    report = json.loads((tmp_path / "cut.json").read_text())
    assert report["capture"]["warnings"]
    assert "warning:" in res.stderr
    assert report["chargers"][0]["root_cause"]["fault"] == "http.unauthorized"


def test_analyze_same_names_do_not_overwrite(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d in (a, b):
        (d / "x.pcap").write_bytes((LAB / "dns_nxdomain.pcap").read_bytes())
    out = tmp_path / "out"
    invoke("analyze", str(a / "x.pcap"), str(b / "x.pcap"), "-o", str(out), "--format", "json")
    assert sorted(p.name for p in out.iterdir()) == ["x-2.json", "x.json"]


def test_analyze_usage_errors_exit_2() -> None:
    assert invoke("analyze", str(LAB / "demo.pcap"), "--format", "pdf").exit_code == 2
    assert invoke("analyze", str(LAB / "demo.pcap"), "-o", "-", "--format", "json,md").exit_code == 2
    assert invoke("analyze", str(LAB / "demo.pcap"), "--csms", "host:port").exit_code == 2
    superscript = invoke("analyze", str(LAB / "demo.pcap"), "--csms", "host:\u00b2")  # a digit to isdigit only
    assert superscript.exit_code == 2
    assert "is not a number" in superscript.output


def test_analyze_csms_option_names_the_backend(tmp_path: Path) -> None:
    res = invoke("analyze", str(LAB / "tcp_syn_timeout.pcap"), "-o", "-", "--format", "json", "--csms", "127.0.0.20")
    (c,) = json.loads(res.stdout)["chargers"]
    assert c["root_cause"]["fault"] == "tcp.syn_timeout"
    assert c["csms"]["address"] == "127.0.0.20"


def test_catalogue_lists_every_fault_with_cx_code() -> None:
    res = invoke("catalogue", "--format", "json")
    rows = json.loads(res.output)
    by_id = {r["fault"]: r for r in rows}
    assert by_id["tls.cert_not_yet_valid"]["cx_code"] == "CX013"
    assert by_id["clock.reset"]["cx_code"] == "CX015"
    assert all(r["remediation"] for r in rows)
    table = invoke("catalogue").output
    assert "ocpp.auth_rejected" in table
    assert "CX009" in table


# -- scripting: stdout lines, stderr messages, one-line errors with their exit status -------------------------------


def test_analyze_prints_one_line_per_charger_that_matches_the_json_report(tmp_path: Path) -> None:
    caps = [str(LAB / n) for n in ("gateway_mixed.pcap", "tcp_refused_backoff.pcap", "healthy_16_ws.pcap")]
    res = invoke("analyze", *caps, "-o", str(tmp_path), "--format", "json")
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    expected = []
    for cap in caps:
        report = json.loads((tmp_path / (Path(cap).stem + ".json")).read_text())
        for c in report["chargers"]:
            fields = [f"{cap}:", c["id"] or c["address"], c["verdict"]]
            rc = c["root_cause"]
            if rc:
                code = rc["cx_code"]
                fields += [rc["fault"], f"@{rc['frame']}", code, MREC_NAMES[code], f"fix:{rc['fix_side']}"]
                fields += ["site-visit"] if c["site_visit"] else []
            expected.append(fields)
    assert [ln.split(" ") for ln in lines] == expected
    assert len(lines) == 6  # four chargers at the gateway, one each in the others
    assert "site-visit" in lines[3]  # GW-CP-04's wrong password: no session left to fix it remotely
    assert res.stderr.splitlines() == [f"{cap}: wrote {tmp_path / (Path(cap).stem + '.json')}" for cap in caps]


def test_a_capture_without_a_charger_gets_its_line_too(tmp_path: Path) -> None:
    iso15118 = EXTERNAL / "ocpp-field" / "dspace-group__dsV2Gshark__ISO-20_TLS13_DC_DS5366_Josev.pcapng"
    res = invoke("analyze", str(iso15118), "-o", str(tmp_path), "--format", "json")
    assert res.exit_code == 4
    assert res.stdout == (
        f"{iso15118}: no charger found (the capture holds car-to-charger ISO 15118 / DIN 70121 traffic)\n"
    )


def test_quiet_keeps_the_stdout_lines_and_errors_only(tmp_path: Path) -> None:
    whole = (LAB / "http_unauthorized.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[: len(whole) - 40])  # a warning on stderr without -q
    loud = invoke("analyze", str(cut), "-o", str(tmp_path / "r"))
    assert "warning:" in loud.stderr
    assert "wrote" in loud.stderr
    quiet = invoke("analyze", str(cut), str(tmp_path / "missing.pcap"), "-o", str(tmp_path / "r"), "-q")
    assert quiet.exit_code == 3
    assert quiet.stdout == loud.stdout
    assert quiet.stdout.startswith(f"{cut}: CP-QUEBEC-30 fault http.unauthorized @10 ")
    assert quiet.stderr == f"error: {tmp_path / 'missing.pcap'}: cannot open: No such file or directory\n"


def test_dash_o_prints_the_json_alone_on_stdout() -> None:
    cap = str(LAB / "tcp_refused.pcap")
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", cap, "-o", "-", "-q"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["chargers"][0]["root_cause"]["fault"] == "tcp.refused"
    assert proc.stderr == ""


WRITABLE_FILE = "not-a-dir.txt"
HELP = "(see: ghostcap analyze --help)"


def _problems(tmp: Path) -> list[tuple[list[str], int, str]]:
    """(arguments, exit status, the one line on stderr) for each usage or I/O problem."""
    cap = str(LAB / "tcp_refused.pcap")
    (tmp / WRITABLE_FILE).write_text("x")
    (tmp / "keys").mkdir()
    return [
        (
            ["analyze", cap, "-o", str(tmp / WRITABLE_FILE)],
            2,
            f"error: -o {tmp / WRITABLE_FILE}: is a file, not a directory",
        ),
        (
            ["analyze", cap, "-o", str(tmp / WRITABLE_FILE / "sub")],
            2,
            f"error: -o {tmp / WRITABLE_FILE / 'sub'}: cannot create the directory: Not a directory",
        ),
        (
            ["analyze", str(tmp / "nope.pcap"), "-o", str(tmp)],
            3,
            f"error: {tmp / 'nope.pcap'}: cannot open: No such file or directory",
        ),
        (
            ["analyze", str(tmp / "keys"), "-o", str(tmp)],
            3,
            f"error: {tmp / 'keys'}: is a directory, not a capture file",
        ),
        (
            ["analyze", cap, "--keylog", str(tmp / "nope.keys")],
            2,
            f"error: Invalid value for '--keylog': File '{tmp / 'nope.keys'}' does not exist. {HELP}",
        ),
        (
            ["analyze", cap, "--keylog", str(tmp / "keys")],
            2,
            f"error: Invalid value for '--keylog': File '{tmp / 'keys'}' is a directory. {HELP}",
        ),
        (
            ["analyze", cap, "--format", "pdf"],
            2,
            "error: unknown report format pdf: use html, json, md (see: ghostcap analyze --help)",
        ),
        (
            ["analyze", cap, cap, "-o", "-"],
            2,
            "error: -o - prints the JSON report of one capture, not 2: give -o DIR (see: ghostcap analyze --help)",
        ),
        (["analyze"], 2, "error: Missing argument 'CAPTURE...'. (see: ghostcap analyze --help)"),
        (["flows", str(tmp / "nope.pcap")], 3, f"error: {tmp / 'nope.pcap'}: cannot open: No such file or directory"),
        (["timeline", str(tmp / "keys")], 3, f"error: {tmp / 'keys'}: is a directory, not a capture file"),
        (["timeline", cap, "--format", "xml"], 2, None),
        (["frobnicate"], 2, "error: No such command 'frobnicate'. (see: ghostcap --help)"),
    ]


def test_every_usage_or_io_problem_is_one_line_with_its_exit_status(tmp_path: Path) -> None:
    for args, status, line in _problems(tmp_path):
        res = invoke(*args)
        assert res.exit_code == status, (args, res.output)
        assert res.stdout == "", args
        (only,) = res.stderr.splitlines()
        assert only.startswith("error: "), only
        if line is not None:
            assert only == line
        for p in {a for a in args if a.startswith(str(tmp_path))}:
            assert only.count(p) == 1, only  # the path once, never twice
    assert not list((tmp_path / WRITABLE_FILE).parent.glob("*.html"))  # nothing written by a failed run


def test_exit_statuses_are_documented_in_help() -> None:
    for name in ("analyze", "flows", "timeline"):
        text = " ".join(invoke(name, "--help").stdout.split())
        for status in ("2 usage error", "3 a capture could not be read" if name == "analyze" else "3 the capture"):
            assert status in text, (name, status)


def test_a_station_id_is_one_printable_word_on_the_line() -> None:
    line = cli_line({"id": "CP 7\x1b[31m\\x", "address": "10.0.0.1", "verdict": "healthy", "root_cause": None})
    assert line == "CP\\x207\\x1b[31m\\\\x healthy"
    assert line.isprintable()


def _first_line_then_close(args: list[str], cwd: Path) -> tuple[str, int, str]:
    """Run ghostcap, read one line of its standard output and close the pipe (as ``| head -1`` does)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline().decode()
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read().decode()
    return first, proc.wait(timeout=120), err


def test_a_closed_pipe_loses_no_report_and_keeps_the_verdict_status(tmp_path: Path) -> None:
    """``ghostcap analyze A B C | head -1``: every capture still gets its reports, the status is the verdicts'
    (1: a fault), nothing but the usual messages on standard error; ``timeline | head -1`` ends quietly with 0."""
    caps = [str(LAB / n) for n in ("gateway_mixed.pcap", "tcp_refused_backoff.pcap", "ocpp_boot_callerror.pcap")]
    first, status, err = _first_line_then_close(["analyze", *caps, "-o", str(tmp_path)], tmp_path)
    assert first.startswith(f"{caps[0]}: ")
    assert status == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{Path(c).stem}.{ext}" for c in caps for ext in ("html", "json", "md")
    )
    assert [line for line in err.splitlines() if ": wrote " not in line] == []  # only the files written
    # enough lines that the reader is gone while ghostcap still writes
    first, status, err = _first_line_then_close(["timeline", str(LAB / "gateway_mixed.pcap")], tmp_path)
    assert first.startswith("time (UTC)")
    assert (status, err) == (0, "")


def test_a_full_disk_on_standard_output_is_one_line_and_status_2(tmp_path: Path) -> None:
    """Standard output on a full disk (``/dev/full``): one line naming it, exit status 2 as for an ``-o`` that
    cannot be written; not 3 (the capture is readable) and not 5 (no bug)."""
    cap = str(LAB / "tls12_cert_not_yet_valid.pcap")
    for args in (
        ["timeline", cap],
        ["timeline", "--format", "ndjson", cap],
        ["flows", cap],
        ["analyze", cap, "-o", "-"],
    ):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [sys.executable, "-m", "analyzer", *args], cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True
            )
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        assert errors == ["error: cannot write to standard output: No space left on device"], (args, done.stderr)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr


def test_the_capture_digest_is_the_files_and_never_that_of_an_emptied_pipe(tmp_path: Path) -> None:
    """A regular file's sha256 (computed beside the analysis) is the file's; a pipe's bytes were the reader's, so
    its report says null rather than the digest of nothing (e3b0c442...)."""
    import hashlib
    import os

    cap = LAB / "tls12_cert_not_yet_valid.pcap"
    assert invoke("analyze", str(cap), "-o", str(tmp_path / "file"), "--format", "json").exit_code == 1
    report = json.loads((tmp_path / "file" / "tls12_cert_not_yet_valid.json").read_text())
    assert report["capture"]["sha256"] == hashlib.sha256(cap.read_bytes()).hexdigest()
    fifo = tmp_path / "pipe.pcap"
    os.mkfifo(fifo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "analyze", str(fifo), "-o", str(tmp_path / "pipe"), "--format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with open(fifo, "wb") as w:
        w.write(cap.read_bytes())
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    report = json.loads((tmp_path / "pipe" / "pipe.json").read_text())
    assert report["capture"]["sha256"] is None
    assert report["chargers"][0]["root_cause"]["fault"] == "tls.cert_not_yet_valid"
