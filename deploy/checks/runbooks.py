"""Every alert has a severity (page or ticket), a summary and a runbook_url that points at an
existing entry of docs/runbooks/MONITORING_ALERTS.md, and every entry there is an alert's.

    python3 deploy/checks/runbooks.py
"""

import pathlib
import re
import sys

import ruamel.yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNBOOK = "docs/runbooks/MONITORING_ALERTS.md"


def anchor(heading):
    """The anchor GitHub and most Markdown renderers give a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def main():
    entries = {anchor(line[4:]) for line in (ROOT / RUNBOOK).read_text().splitlines() if line.startswith("### ")}
    alerts, problems = set(), []
    yaml = ruamel.yaml.YAML(typ="safe")
    for path in sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")):
        for group in yaml.load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                alerts.add(anchor(name))
                if rule.get("labels", {}).get("severity") not in ("page", "ticket"):
                    problems.append(f"{name}: severity must be page or ticket")
                if not rule.get("annotations", {}).get("summary"):
                    problems.append(f"{name}: no summary")
                url = rule.get("annotations", {}).get("runbook_url", "")
                if url != f"{RUNBOOK}#{anchor(name)}":
                    problems.append(f"{name}: runbook_url must be {RUNBOOK}#{anchor(name)}, is {url!r}")
                elif anchor(name) not in entries:
                    problems.append(f"{name}: {RUNBOOK} has no entry '### {name}'")
    for entry in sorted(entries - alerts):
        problems.append(f"{RUNBOOK}: entry #{entry} belongs to no alert")
    if problems:
        sys.exit("\n".join(problems))
    print(f"ok  {len(alerts)} alerts, each with a severity, a summary and its runbook entry in {RUNBOOK}")


if __name__ == "__main__":
    main()
