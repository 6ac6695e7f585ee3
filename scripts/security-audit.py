#!/usr/bin/env python3
"""`just security`: runs every security scan, writes docs/SECURITY_AUDIT_RESULTS.md from their
real output, and exits 1 when any finding is neither fixed nor accepted with a reason.

Scans: cargo deny (advisories, licences, sources), detect-secrets over the tree (findings must be
audited in .secrets.baseline) and over every blob of the git history (findings must be in the tree's
audited baseline or in deploy/security-accepted.toml), hadolint on deploy/Dockerfile, checkov over
deploy/ (findings must be accepted in deploy/security-accepted.toml), and the response security
headers of a running GAD (deploy/checks/security-headers.sh).

Expects the tools where `just security-tools` and `just deploy-tools` put them: SECURITY_VENV and
DEPLOY_VENV, and GAD_BIN for the header check.
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
os.chdir(root)
security_bin = Path(os.environ["SECURITY_VENV"]) / "bin"
deploy_bin = Path(os.environ["DEPLOY_VENV"]) / "bin"
accepted = tomllib.loads((root / "deploy/security-accepted.toml").read_text())
sections = []
SCAN_RECORDS = {".secrets.baseline", "deploy/security-accepted.toml", "docs/SECURITY_AUDIT_RESULTS.md"}


def run(command, **kwargs):
    """The command's exit status and its combined output."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return done.returncode, done.stdout + done.stderr


def version(command):
    return run(command)[1].strip().splitlines()[0]


def package_version(name):
    """The installed version of a PyPI package of the security venv (detect-secrets' own
    --version misreports it)."""
    return run([str(security_bin / "python"), "-c", f"import importlib.metadata as m; print(m.version('{name}'))"])[1].strip()


def section(name, tool, command, findings, passed, note=""):
    """findings: (what, where, what was done) triples."""
    status = "pass" if passed else "FAIL"
    print(f"== {name}: {status} ({len(findings)} findings)")
    for what, where, done in findings:
        if not done.startswith(("accepted", "reviewed")):
            print(f"   {where}: {what} -> {done}")
    sections.append({"name": name, "tool": tool, "command": command, "findings": findings, "passed": passed, "note": note})


def cargo_deny():
    # Offline against ../shared's RustSec snapshot where it exists (CI here), else online.
    offline = (root.parent / "shared/tools/advisory-db").exists()
    code, output = run(["just", "deny"] if offline else ["cargo", "deny", "check"])
    findings = []
    for line in output.splitlines():
        match = re.match(r"^(error|warning)\[([\w-]+)\]: (.*)$", line.strip())
        if match:
            findings.append((f"{match[1]} {match[2]}: {match[3]}", "Cargo.lock", "fix required: the gate fails" if match[1] == "error" else "reported"))
    for ignored in tomllib.loads(Path("deny.toml").read_text())["advisories"].get("ignore", []):
        findings.append((f"advisory {ignored['id']}", "deny.toml", f"accepted: {ignored['reason']}"))
    summary = next((line.strip() for line in output.splitlines() if re.search(r"advisories (ok|FAILED)", line)), "")
    section("Dependencies (advisories, licences, sources)", version(["cargo", "deny", "--version"]),
            "just deny (cargo deny --offline check, RustSec snapshot of ../shared/advisory-db)" if offline else "cargo deny check",
            findings, code == 0, f"cargo deny: `{summary}`" if summary else "")


def secrets_tree():
    files = run(["git", "ls-files"])[1].split()
    hook = str(security_bin / "detect-secrets-hook")
    code, output = run([hook, "--baseline", ".secrets.baseline", *files])
    if code != 0 and "Potential secrets" not in output:
        # The hook refreshed the line numbers of audited findings (or wants the refreshed file
        # staged): nothing new was found. Commit the refreshed .secrets.baseline.
        print(f"   note: {' '.join(output.split())[:200]}")
        code = 0
    baseline = json.loads(Path(".secrets.baseline").read_text())
    findings, unaudited = [], 0
    for path, items in sorted(baseline["results"].items()):
        for item in items:
            if item.get("is_secret") is False:
                done = "reviewed: an example or test value, not a credential (audited in .secrets.baseline)"
            else:
                unaudited += 1
                done = "NOT REVIEWED: audit it (detect-secrets audit .secrets.baseline) or remove it"
            findings.append((item["type"], f"{path}:{item['line_number']}", done))
    if code != 0:
        findings.append(("new potential secret(s), not in the baseline", "tree", "fix required: " + " ".join(output.split())[:400]))
    section("Secrets in the tree", f"detect-secrets {package_version('detect-secrets')}",
            "detect-secrets-hook --baseline .secrets.baseline $(git ls-files)", findings, code == 0 and unaudited == 0)
    return {item["hashed_secret"] for items in baseline["results"].values() for item in items if item.get("is_secret") is False}


def secrets_history(reviewed):
    """Every blob in the history of HEAD that is not in its tree, scanned once."""
    head = set(run(["git", "ls-tree", "-r", "--format=%(objectname)", "HEAD"])[1].split())
    objects = run(["git", "rev-list", "--objects", "HEAD"])[1].splitlines()
    blobs = {}
    for line in objects:
        sha, _, path = line.partition(" ")
        # The scan's own records hold hashes that look like secrets; the tree scan skips them too.
        if path and sha not in head and sha not in blobs and path not in SCAN_RECORDS:
            blobs[sha] = path
    kinds = subprocess.run(["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"], input="\n".join(blobs), capture_output=True, text=True).stdout
    blobs = {sha: blobs[sha] for sha, kind in (line.split() for line in kinds.splitlines()) if kind == "blob"}
    commits = run(["git", "rev-list", "--count", "HEAD"])[1].strip()
    findings, failed = [], False
    accepted_history = {entry["hash"]: entry for entry in accepted.get("history", [])}
    with tempfile.TemporaryDirectory() as scratch:
        for sha, path in blobs.items():
            content = subprocess.run(["git", "cat-file", "blob", sha], capture_output=True).stdout
            folder = Path(scratch) / sha
            folder.mkdir()
            (folder / Path(path).name).write_bytes(content)
        result = json.loads(run([str(security_bin / "detect-secrets"), "scan", "--all-files", "."], cwd=scratch)[1])
    for scanned, items in sorted(result["results"].items()):
        sha, name = scanned.split("/", 1)
        for item in items:
            where = f"{blobs.get(sha, name)} (blob {sha[:8]})"
            if item["hashed_secret"] in reviewed:
                continue  # the same value is in the tree and audited there
            if item["hashed_secret"] in accepted_history:
                entry = accepted_history[item["hashed_secret"]]
                findings.append((item["type"], f"{entry['where']}", f"accepted: {entry['reason']}"))
            else:
                failed = True
                findings.append((item["type"], where, "fix required: rotate it if real, then accept it in deploy/security-accepted.toml"))
    findings = list(dict.fromkeys(findings))
    section("Secrets in the git history", f"detect-secrets {package_version('detect-secrets')}",
            f"detect-secrets scan over the {len(blobs)} blobs of the {commits} commits of HEAD's history that are not in its tree",
            findings, not failed, "Values that are also in the tree are covered by its audited baseline.")


def hadolint():
    code, output = run([str(deploy_bin / "hadolint"), "--format", "json", "deploy/Dockerfile"])
    findings = [(f"{item['code']} ({item['level']}): {item['message']}", f"deploy/Dockerfile:{item['line']}", "fix required")
                for item in json.loads(output or "[]")]
    section("Container image (Dockerfile)", version([str(deploy_bin / "hadolint"), "--version"]),
            "hadolint deploy/Dockerfile", findings, code == 0 and not findings)


def checkov():
    command = [str(security_bin / "checkov"), "-d", "deploy", "--quiet", "--compact", "--skip-download", "-o", "json"]
    _, output = run(command)
    reports = json.loads(output[output.index("["):] if output.lstrip().startswith("[") else output[output.index("{"):])
    reports = reports if isinstance(reports, list) else [reports]
    # One row per check and verdict, naming every resource it concerns.
    grouped, failed, passed_checks = {}, False, 0
    for report in reports:
        passed_checks += report.get("summary", {}).get("passed", 0)
        for check in report.get("results", {}).get("failed_checks", []):
            path = check["file_path"].removeprefix("/deploy")
            reason = next((entry["reason"] for entry in accepted.get("checkov", [])
                           if entry["check"] == check["check_id"] and path.startswith(entry["path"])), None)
            failed |= reason is None
            key = (f"{check['check_id']} {check['check_name']}", f"accepted: {reason}" if reason else "fix required")
            grouped.setdefault(key, []).append(f"deploy{path} ({check['resource']})")
    findings = [(what, ", ".join(sorted(set(places))), done) for (what, done), places in sorted(grouped.items())]
    section("Deployment configuration (deploy/)", f"checkov {version([str(security_bin / 'checkov'), '--version'])}",
            "checkov -d deploy --skip-download", findings, not failed,
            f"{passed_checks} checks passed over Dockerfile, compose, Kubernetes, kustomize and secrets.")


def headers():
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        code, output = run(["deploy/checks/security-headers.sh", out.name])
        results = json.loads(Path(out.name).read_text() or "[]")
    findings = [(f"{result['check']} (got {result['seen']!r})", result["response"], "fix required") for result in results if not result["passed"]]
    if code != 0 and not findings:
        findings.append(("the check did not run", "deploy/checks/security-headers.sh", output.strip()[-400:]))
    held = sum(result["passed"] for result in results)
    section("Response security headers", "deploy/checks/security-headers.py", "deploy/checks/security-headers.sh (a GAD served with HSTS configured)",
            findings, code == 0, f"{held} of {len(results)} header checks hold on {len({r['response'] for r in results})} responses.")


def write_report():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = run(["git", "rev-parse", "--short", "HEAD"])[1].strip()
    dirty = " (with uncommitted changes)" if run(["git", "status", "--porcelain"])[1].strip() else ""
    lines = [
        "# Security audit results",
        "",
        "Generated by `just security` (scripts/security-audit.py) from the tools' own output; do not edit",
        "by hand, run it again. How findings are accepted: docs/QUALITY_GATES.md.",
        "",
        f"- Date: {now}",
        f"- Commit: {commit}{dirty}",
        f"- Machine: {platform.system()} {platform.release()}, {os.cpu_count()} cores",
        f"- Verdict: {'PASS' if all(s['passed'] for s in sections) else 'FAIL'}",
        "",
        "| scan | tool | findings | result |",
        "|---|---|---|---|",
    ]
    for s in sections:
        lines.append(f"| {s['name']} | {s['tool']} | {len(s['findings'])} | {'pass' if s['passed'] else '**FAIL**'} |")
    for s in sections:
        lines += ["", f"## {s['name']}", "", f"Tool: {s['tool']}. Command: `{s['command']}`.", ""]
        if s["note"]:
            lines += [s["note"], ""]
        if not s["findings"]:
            lines.append("No findings.")
            continue
        lines += ["| finding | where | what was done |", "|---|---|---|"]
        for what, where, done in s["findings"]:
            cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {cell(what)} | {cell(where)} | {cell(done)} |")
    Path("docs/SECURITY_AUDIT_RESULTS.md").write_text("\n".join(lines) + "\n")


cargo_deny()
reviewed = secrets_tree()
secrets_history(reviewed)
hadolint()
checkov()
headers()
write_report()
failed = [s["name"] for s in sections if not s["passed"]]
print(f"security: {len(sections) - len(failed)} of {len(sections)} scans pass; report in docs/SECURITY_AUDIT_RESULTS.md")
if failed:
    print("security: FAILED: " + ", ".join(failed))
sys.exit(1 if failed else 0)
