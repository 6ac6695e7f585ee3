#!/usr/bin/env python3
"""Benchmarks of the Telegram bot (docs/TELEGRAM.md), against a fake Bot API run by this script.

    loadtest/telegram.py <gad binary> [webhook-seconds] [officers]
    e.g. loadtest/telegram.py target/release/gad 15 1000

Needs DATABASE_URL (an existing database to administer from; a scratch database is created and
dropped) and REDIS_URL (a unique key prefix is used), as `source .data/env` sets them.

1. Webhook: updates from 50 unlinked chats posted at 200/s (open loop) to one instance; each is
   stored and acknowledged, then processed in the background (link lookup, a sendMessage to the
   fake). Latency of each POST, and when the last reply reached the fake (the processing keeps up).
2. Notification latency when the limits do not bind: 50 tasks, each for another linked officer,
   created 5 per second; time from sending the POST to the fake receiving the sendMessage (an
   upper bound of commit → sendMessage).
3. `officers` tasks for as many linked officers, created through two instances at once; every
   sendMessage is counted: all delivered, none twice, and at what rate.

Only the standard library. Prints a JSON summary and writes target/loadtest/telegram.json.
"""

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

TOKEN = "4242:bench-token"
SECRET = "bench-webhook-secret"


class FakeBotApi(BaseHTTPRequestHandler):
    """`POST /bot<token>/<method>` answered `{ok, result}`; each sendMessage is reported with its
    time (CLOCK_MONOTONIC, comparable across processes) to the benchmark's process. The fake runs
    in a process of its own, so that the load generator's threads do not slow its answers."""

    protocol_version = "HTTP/1.1"
    reports = None  # multiprocessing.Queue of (monotonic time, chat_id, text)
    sent = []
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        method = self.path.rsplit("/", 1)[-1]
        result = True
        if method == "sendMessage":
            FakeBotApi.reports.put((time.monotonic(), body.get("chat_id"), body.get("text", "")))
            result = {"message_id": 1, "date": 0, "chat": {"id": body.get("chat_id"), "type": "private"}}
        elif method == "getUpdates":
            result = []
        payload = json.dumps({"ok": True, "result": result}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_):
        pass


def serve_fake(port, reports):
    FakeBotApi.reports = reports
    ThreadingHTTPServer(("127.0.0.1", port), FakeBotApi).serve_forever()


def collect(reports):
    while True:
        report = reports.get()
        with FakeBotApi.lock:
            FakeBotApi.sent.append(report)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else None


def psql(url, sql):
    return subprocess.run(["psql", url, "-qtAc", sql], check=True, capture_output=True, text=True).stdout.strip()


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, base):
        self.base = urlparse(base)
        self.local = threading.local()

    def request(self, method, path, body=None, headers=None):
        """Once more on a fresh connection when the server closed an idle keep-alive one."""
        try:
            return self.send(method, path, body, headers)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            return self.send(method, path, body, headers)

    def send(self, method, path, body, headers):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=30)
            self.local.connection = connection
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            connection.request(method, path, body=data, headers=all_headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.local.connection = None
            raise
        return response.status, (json.loads(payload) if payload else None)


def wait_ready(base, deadline=60):
    until = time.time() + deadline
    while time.time() < until:
        try:
            if Client(base).request("GET", "/health/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} never became ready")


def main():
    gad = sys.argv[1]
    webhook_seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    officers = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    admin_url = os.environ["DATABASE_URL"]
    scratch = f"gad_tgbench_{int(time.time())}"
    psql(admin_url, f"CREATE DATABASE {scratch}")
    url = admin_url.rsplit("/", 1)[0] + "/" + scratch
    fake_port = 18480
    reports = multiprocessing.Queue()
    fake = multiprocessing.Process(target=serve_fake, args=(fake_port, reports), daemon=True)
    fake.start()
    threading.Thread(target=collect, args=(reports,), daemon=True).start()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GAD_ENV": "local",
        "GAD_JWT_SECRET": "telegram-benchmark-signing-key-long-enough",
        "GAD_RATE_LIMIT_GENERAL": "1000000",
        "GAD__REDIS__KEY_PREFIX": f"tgbench{int(time.time())}:",
        "TELEGRAM_API_URL": f"http://127.0.0.1:{fake_port}",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_MODE": "webhook",
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_BOT_USERNAME": "gad_bench_bot",
        "RUST_LOG": "warn",
    }
    processes = []
    try:
        subprocess.run([gad, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([gad, "create-admin", "--email", "bench@example.org"],
                       env={**env, "GAD_ADMIN_PASSWORD": "benchmark-password-1"}, check=True, capture_output=True)
        bases = []
        for port in (18481, 18482):
            processes.append(subprocess.Popen([gad, "serve"], env={**env, "GAD_BIND": f"127.0.0.1:{port}"},
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_ready(base)
        clients = [Client(base) for base in bases]
        status, tokens = clients[0].request("POST", "/api/v1/auth/login",
                                            {"email": "bench@example.org", "password": "benchmark-password-1"})
        assert status == 200, tokens
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}
        summary = {"webhook": webhook(clients[0], webhook_seconds, first=1)}
        summary["webhook"]["pending_after"] = psql(
            url, "SELECT count(*) FROM telegram_processed_updates WHERE processed_at IS NULL")
        # The same updates again: each is a duplicate (the insert finds it), nothing is processed.
        summary["webhook_duplicates"] = webhook(clients[0], webhook_seconds, first=1)

        # Linked officers with the notification consent, seeded directly.
        total = officers + 50
        psql(url, f"""
            INSERT INTO users (id, email, password_hash, first_name, last_name, role)
              SELECT gen_random_uuid(), 'officer' || n || '@bench.example.org', 'x', 'Bench', 'Officer', 'officer'
              FROM generate_series(1, {total}) n;
            INSERT INTO officers (id, user_id, badge_number, availability)
              SELECT gen_random_uuid(), id, 'B-' || split_part(email, '@', 1), 'available' FROM users WHERE role = 'officer';
            INSERT INTO telegram_links (user_id, chat_id)
              SELECT id, 500000 + substring(email from 'officer([0-9]+)@')::int FROM users WHERE role = 'officer';
            INSERT INTO consents (id, user_id, consent_type, granted, policy_version, channel)
              SELECT gen_random_uuid(), id, 'telegram_notifications', true, '1', 'import' FROM users WHERE role = 'officer';
        """)
        rows = psql(url, "SELECT o.id || ' ' || l.chat_id FROM officers o JOIN telegram_links l ON l.user_id = o.user_id ORDER BY l.chat_id")
        linked = [(line.split()[0], int(line.split()[1])) for line in rows.splitlines()]
        summary["latency"] = latency(clients[0], auth, linked[:50])
        summary["bulk"] = bulk(clients, auth, linked[50:])
        summary["load_average"] = os.getloadavg()
        summary["method"] = {"webhook_rate_per_s": 200, "webhook_seconds": webhook_seconds, "officers": officers,
                             "instances": 2, "gad": gad}
        print(json.dumps(summary, indent=2))
        os.makedirs("target/loadtest", exist_ok=True)
        with open("target/loadtest/telegram.json", "w") as out:
            json.dump(summary, out, indent=2)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        fake.terminate()
        psql(admin_url, f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")


def webhook(client, seconds, first):
    """Open loop at 200 updates/s: each send is scheduled, not waiting for the previous one."""
    latencies, statuses = [], {}
    lock = threading.Lock()

    def post(n):
        update = {"update_id": n, "message": {"message_id": n, "date": 0, "text": "/ayuda",
                                              "chat": {"id": 9000 + n % 50, "type": "private"}}}
        started = time.perf_counter()
        try:
            status, _ = client.request("POST", "/telegram/webhook", update, {"X-Telegram-Bot-Api-Secret-Token": SECRET})
        except OSError:
            status = 0
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    count = 200 * seconds
    replied_before = len(replies())
    started_at = time.monotonic()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for n in range(first, first + count):
            delay = start + (n - first + 1) / 200 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, n)
    took = time.perf_counter() - start
    # The replies come after the answers: wait until none is missing (or none more arrives).
    deadline = time.monotonic() + 120
    while len(replies()) - replied_before < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # a reply sent twice would arrive now
    arrived = sorted(replies())[replied_before:]
    return {"updates": count, "seconds": round(took, 2), "statuses": statuses,
            "p50_ms": round(percentile(latencies, 50), 2), "p99_ms": round(percentile(latencies, 99), 2),
            "max_ms": round(max(latencies), 2), "replies": len(arrived),
            "last_reply_after_s": round(arrived[-1] - started_at, 2) if arrived else None}


def replies():
    """Arrival times of the replies to the webhook's chats."""
    with FakeBotApi.lock:
        return [at for at, chat, _ in FakeBotApi.sent if isinstance(chat, int) and 9000 <= chat < 9050]


def create_task(client, auth, officer, title):
    body = {"title": title, "kind": "patrol", "scheduled_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
            "officer_ids": [officer]}
    status, created = client.request("POST", "/api/v1/tasks", body, auth)
    assert status == 201, created


def received(chats):
    with FakeBotApi.lock:
        return [(at, chat) for at, chat, text in FakeBotApi.sent if chat in chats and "Nueva tarea" in text]


def latency(client, auth, linked):
    sent_at = {}
    for officer, chat in linked:
        sent_at[chat] = time.monotonic()
        create_task(client, auth, officer, f"Latency {chat}")
        time.sleep(0.2)
    deadline = time.monotonic() + 30
    while len(received(set(sent_at))) < len(sent_at) and time.monotonic() < deadline:
        time.sleep(0.05)
    arrivals = {chat: at for at, chat in received(set(sent_at))}
    values = [(arrivals[chat] - sent_at[chat]) * 1000 for chat in sent_at if chat in arrivals]
    return {"notifications": len(sent_at), "delivered": len(values),
            "p50_ms": round(percentile(values, 50), 1), "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(max(values), 1)}


def bulk(clients, auth, linked):
    chats = {chat for _, chat in linked}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(create_task, clients[n % 2], auth, officer, f"Bulk {uuid.uuid4().hex[:8]}")
                   for n, (officer, _) in enumerate(linked)]
        for future in futures:
            future.result()
    created = time.monotonic() - started
    deadline = time.monotonic() + 300
    while len({chat for _, chat in received(chats)}) < len(chats) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)  # anything sent twice would arrive now
    arrivals = received(chats)
    times = sorted(at for at, _ in arrivals)
    span = times[-1] - times[0] if len(times) > 1 else 0
    return {"tasks": len(linked), "created_in_s": round(created, 1), "delivered": len({chat for _, chat in arrivals}),
            "messages": len(arrivals), "duplicates": len(arrivals) - len({chat for _, chat in arrivals}),
            "first_to_last_s": round(span, 1), "from_first_request_s": round(times[-1] - started, 1) if times else None,
            "rate_per_s": round((len(times) - 1) / span, 2) if span else None}


if __name__ == "__main__":
    main()
