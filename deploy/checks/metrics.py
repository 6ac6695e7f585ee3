"""Every metric that deploy/ reads is one GAD exposes: the names (and histogram `le` bounds) used
by the Prometheus rules, the Grafana dashboard and the canary check are compared with a scrape of
a freshly started GAD that has served no request yet.

    python3 deploy/checks/metrics.py SCRAPE_FILE

`up` is Prometheus's own; `gad:…` names must be recorded by a rule.
"""

import json
import pathlib
import re
import sys

import ruamel.yaml

DEPLOY = pathlib.Path(__file__).resolve().parent.parent
PROMETHEUS_OWN = {"up"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"}


def names_in(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end():].lstrip()[:1]
        if following != "(" and match.group().lower() not in KEYWORDS:
            names.add(match.group())
    return names


def bounds_in(expr):
    return set(re.findall(r'le="([^"]+)"', expr))


def rules():
    """(file name, rule) for every Prometheus rule."""
    yaml = ruamel.yaml.YAML(typ="safe")
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield path.name, rule


def used():
    """(source, expression) for every query deploy/ makes."""
    for file, rule in rules():
        yield f"{file}: {rule.get('alert') or rule.get('record')}", rule["expr"]
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in dashboard.get("templating", {}).get("list", []):
            match = re.match(r"label_values\((\w+),", variable.get("definition", ""))
            if match:
                yield f"{path.name}: variable {variable['name']}", match.group(1)
    # The canary check builds its queries in bash: the metric names are literal in it.
    script = (DEPLOY / "canary-check.sh").read_text()
    for name in sorted(set(re.findall(r"\b[a-z][a-z0-9_]*_(?:total|bucket|count|sum)\b", script))):
        yield "canary-check.sh", name
    for bound in sorted(set(re.findall(r'le=\\?"([^"\\]+)\\?"', script))):
        yield "canary-check.sh", f'x{{le="{bound}"}}'


def main(scrape_file):
    exposed, bounds = set(), set()
    for line in pathlib.Path(scrape_file).read_text().splitlines():
        if line and not line.startswith("#"):
            exposed.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group())
            bounds.update(re.findall(r'le="([^"]+)"', line))
    if not exposed:
        sys.exit(f"{scrape_file}: no samples in the scrape")
    queries = list(used())
    recorded = {rule["record"] for _, rule in rules() if "record" in rule}
    problems, checked = [], set()
    for source, expr in queries:
        for name in names_in(expr):
            checked.add(name)
            if name not in exposed and name not in PROMETHEUS_OWN and name not in recorded:
                problems.append(f"{source}: {name} is not exposed by GAD")
        for bound in bounds_in(expr):
            if bound not in bounds:
                problems.append(f'{source}: no histogram has the bucket le="{bound}"')
    if problems:
        sys.exit("\n".join(sorted(set(problems))))
    from_gad = sorted(checked - PROMETHEUS_OWN - recorded - {"x"})
    print(f"ok  {len(queries)} queries read {len(from_gad)} GAD metrics, all in a scrape taken before the first request:")
    print("    " + ", ".join(from_gad))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
