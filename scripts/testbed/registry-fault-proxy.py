#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of a registry, for the appliance push tests.

Usage: registry-fault-proxy.py LISTEN_PORT REGISTRY_PORT FAULT [FAULT_LOG]

FAULT is one of:
  drop-first-put   the first PUT with a body: read part of it, then close the connection without an answer
                   (an upload cut mid-way); every later request is forwarded
  503-first-put    the first PUT with a body: answer 503 without forwarding it
  none             forward everything
It prints "listening" once it accepts connections, and one line per injected fault (also appended to FAULT_LOG).
"""
import http.client
import http.server
import socketserver
import sys
import threading

LISTEN, TARGET, FAULT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
FAULT_LOG = sys.argv[4] if len(sys.argv) > 4 else None
state = {"faulted": False}
lock = threading.Lock()


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if self.command == "PUT" and (length > 0 or chunked):
            with lock:
                fault = not state["faulted"] and FAULT != "none"
                state["faulted"] = state["faulted"] or fault
            if fault:
                note = f"fault {FAULT} on {self.path.split('?')[0]}"
                print(note, flush=True)
                if FAULT_LOG:
                    with open(FAULT_LOG, "a") as log:
                        log.write(note + "\n")
                if FAULT == "drop-first-put":
                    self.rfile.read(min(length, 64) if length else 64)
                    self.close_connection = True
                    self.connection.close()
                    return
                self.rfile.read(length) if length else None
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = self.read_body(length, chunked)
        connection = http.client.HTTPConnection("127.0.0.1", TARGET, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
        headers["Content-Length"] = str(len(body))
        connection.request(self.command, self.path, body=body if body or self.command != "GET" else None,
                           headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            if key.lower() == "location":
                value = value.replace(f"127.0.0.1:{TARGET}", f"127.0.0.1:{LISTEN}")
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def read_body(self, length, chunked):
        if not chunked:
            return self.rfile.read(length) if length else b""
        out = b""
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", LISTEN), Proxy)
print("listening", flush=True)
server.serve_forever()
