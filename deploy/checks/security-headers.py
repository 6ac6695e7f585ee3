#!/usr/bin/env python3
"""The response security headers of SPEC §2 on a running GAD: on a public response, an error, an
unauthenticated and an authenticated API response. Prints ok / FAIL per check and writes the
results as JSON for docs/SECURITY_AUDIT_RESULTS.md; exits 1 when one fails.
    security-headers.py BASE_URL EMAIL PASSWORD OUT_JSON [--expect-hsts]
"""
import json
import sys
import urllib.error
import urllib.request

base, email, password, out = sys.argv[1:5]
expect_hsts = "--expect-hsts" in sys.argv[5:]

EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def fetch(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method, data=body)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


login = json.dumps({"email": email, "password": password}).encode()
status, _, body = fetch("POST", "/api/v1/auth/login", login)
if status != 200:
    sys.exit(f"login as {email} failed: {status} {body[:200]!r}")
token = json.loads(body)["access_token"]

responses = [
    ("GET /health/live", fetch("GET", "/health/live"), False),
    ("GET /api/v1/no-such-route (404)", fetch("GET", "/api/v1/no-such-route"), False),
    ("GET /api/v1/auth/me without a token (401)", fetch("GET", "/api/v1/auth/me"), False),
    ("POST /api/v1/tasks with a malformed body (400)", fetch("POST", "/api/v1/tasks", b"{", token), True),
    ("GET /api/v1/auth/me authenticated (200)", fetch("GET", "/api/v1/auth/me", token=token), True),
]

results = []
for name, (status, headers, _), authenticated in responses:
    checks = []
    for header, expected in EVERY_RESPONSE.items():
        checks.append((f"{header}: {expected}", headers.get(header) == expected, headers.get(header)))
    server = headers.get("Server")
    checks.append(("no Server version banner", server is None or not any(c.isdigit() for c in server), server))
    if authenticated:
        checks.append(("Cache-Control: no-store", "no-store" in (headers.get("Cache-Control") or ""), headers.get("Cache-Control")))
    if expect_hsts:
        hsts = headers.get("Strict-Transport-Security") or ""
        checks.append(("Strict-Transport-Security (HSTS configured)", hsts.startswith("max-age="), hsts or None))
    for check, passed, seen in checks:
        print(f"{'ok  ' if passed else 'FAIL'}  {name}: {check}" + ("" if passed else f" (got {seen!r})"))
        results.append({"response": name, "status": status, "check": check, "passed": passed, "seen": seen})

with open(out, "w") as file:
    json.dump(results, file, indent=2)
failed = sum(not result["passed"] for result in results)
print(f"security headers: {len(results) - failed} of {len(results)} checks hold")
sys.exit(1 if failed else 0)
