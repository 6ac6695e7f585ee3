"""The WebSocket step of deploy/smoke-test.sh, with Python's standard library only: opens
/ws/connect with a one-time ticket, subscribes to `tasks`, prints `subscribed`, then waits for the
`task.created` event of the task titled TITLE and prints `event <task id>`. Exits 1 on anything
else within the timeout.

    python3 deploy/smoke-ws.py WS_URL TITLE      # WS_URL: ws[s]://host[:port]/ws/connect?ticket=…
"""

import base64
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse

TIMEOUT_S = 15


def fail(message):
    print(f"error {message}", flush=True)
    sys.exit(1)


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            fail("the server closed the connection")
        data += chunk
    return data


def send_frame(sock, opcode, payload):
    # Client frames are masked (RFC 6455 §5.3).
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def messages(sock):
    """The server's text messages as JSON; answers pings, fails on close."""
    while True:
        first, second = read_exactly(sock, 2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            length = struct.unpack("!H", read_exactly(sock, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", read_exactly(sock, 8))[0]
        payload = read_exactly(sock, length)
        if opcode == 0x1:
            yield json.loads(payload)
        elif opcode == 0x9:
            send_frame(sock, 0xA, payload)
        elif opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            fail(f"the server closed the socket ({code})")


def main(url, title):
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "wss"
    sock = socket.create_connection((parts.hostname, parts.port or (443 if secure else 80)), timeout=TIMEOUT_S)
    if secure:
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    sock.sendall(
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += read_exactly(sock, 1)
    status = response.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status:
        fail(f"no upgrade: {status}")
    deadline = time.monotonic() + TIMEOUT_S
    subscribed = False
    for message in messages(sock):
        if time.monotonic() > deadline:
            fail("timed out")
        kind = message.get("type")
        if kind == "connection_ack":
            send_frame(sock, 0x1, json.dumps({"type": "subscribe", "topics": ["tasks"]}).encode())
        elif kind == "subscribed" and not subscribed:
            subscribed = True
            print("subscribed", flush=True)
        elif kind == "task.created" and message.get("data", {}).get("title") == title:
            print(f"event {message['data']['id']}", flush=True)
            send_frame(sock, 0x8, struct.pack("!H", 1000))
            return


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2])
    except (OSError, ValueError) as error:
        fail(str(error))
