#!/usr/bin/env python3
"""A registry token server (the distribution spec's bearer token flow), for the appliance push tests.

Usage: registry-token-server.py PORT DIR USER PASSWORD

Makes an RSA key and a self-signed certificate in DIR (cert.pem is the registry's rootcertbundle), then answers
GET /token?service=S&scope=repository:NAME:ACTIONS with a JWT (RS256, the certificate in its x5c header, signed
with the openssl command) granting the scope's actions, to requests with the right basic credentials; 401
otherwise. Each request is appended to DIR/requests.log (path and whether credentials came). Prints "listening".
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

PORT, DIR, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
KEY, CERT = os.path.join(DIR, "key.pem"), os.path.join(DIR, "cert.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY, "-out", CERT,
                "-days", "2", "-subj", "/CN=deployctl-test-token"], check=True, capture_output=True)
DER = subprocess.run(["openssl", "x509", "-in", CERT, "-outform", "DER"], check=True, capture_output=True).stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(service, scope):
    now = int(time.time())
    access = []
    if scope:
        kind, name, actions = scope.split(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(DER).decode()]}
    claims = {"iss": "deployctl-test", "sub": USER, "aud": service, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": b64url(os.urandom(12)), "access": access}
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing.encode(),
                               check=True, capture_output=True).stdout
    return f"{signing}.{b64url(signature)}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        authorised = self.headers.get("Authorization") == expected
        with open(os.path.join(DIR, "requests.log"), "a") as log:
            log.write(json.dumps({"path": url.path, "scope": query.get("scope", [""])[0],
                                  "authorised": authorised}) + "\n")
        if not authorised:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": token(query.get("service", [""])[0], query.get("scope", [""])[0]),
                           "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.HTTPServer(("127.0.0.1", PORT), Handler)
print("listening", flush=True)
server.serve_forever()
