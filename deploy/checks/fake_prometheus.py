"""A stand-in for Prometheus's HTTP API (GET /api/v1/query) that answers chosen values, for
testing deploy/canary-check.sh. It reads the scenario file on every request, so a test changes
the answers by rewriting the file. The scenario is JSON: {"answers": [[REGEX, VALUE], ...]}; the
first REGEX found in the query picks VALUE: a number or "NaN" (one sample), null (no series) or
"error" (a 400 error answer). A query no REGEX matches has no series.

    python3 deploy/checks/fake_prometheus.py SCENARIO_FILE PORT_FILE

Listens on 127.0.0.1 at a free port, which it writes to PORT_FILE once it accepts connections.
"""

import http.server
import json
import re
import sys
import urllib.parse

scenario_file, port_file = sys.argv[1], sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/v1/query":
            return self.answer(404, {"status": "error", "errorType": "not_found", "error": "no such path"})
        query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
        with open(scenario_file) as file:
            answers = json.load(file)["answers"]
        value = next((value for pattern, value in answers if re.search(pattern, query)), None)
        if value == "error":
            return self.answer(400, {"status": "error", "errorType": "bad_data", "error": "chosen failure"})
        result = [] if value is None else [{"metric": {}, "value": [1700000000, str(value)]}]
        self.answer(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def answer(self, status, document):
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file, "w") as file:
    file.write(str(server.server_address[1]))
server.serve_forever()
