"""CORS in a real browser: bastion-local on 127.0.0.1, the probe page served from an allowed
and from a disallowed origin (two loopback ports), headless Chromium loads each page, and the
results the browser exposed to the page are compared with what must happen. Exit 1 on any
mismatch. Run through scripts/cors-browser, which builds bastion-local first."""

import functools
import html
import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "cors probe passphrase 7 quartz"
ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ALLOW_HEADERS = "authorization, content-type, x-request-id"
EXPOSE_HEADERS = "x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset"

failures = []


def expect(what, got, want):
    status = "ok  " if got == want else "FAIL"
    print(f"{status} {what}: {got!r}" + ("" if got == want else f" (want {want!r})"))
    if got != want:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_pages(port):
    handler = functools.partial(QuietHandler, directory=HERE)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def request(api_port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def register_status(api_port, email):
    """201 if nobody registered `email` yet, 409 if the server already saw a registration."""
    body = json.dumps({"email": email, "password": PASSWORD})
    status, _, _ = request(api_port, "POST", "/auth/register", {"Content-Type": "application/json"}, body)
    return status


def browser(chromium, url):
    profile = tempfile.mkdtemp(prefix="cors-chromium-")
    try:
        out = subprocess.run(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", f"--user-data-dir={profile}",
             "--virtual-time-budget=15000", "--dump-dom", url],
            capture_output=True, text=True, timeout=90,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    start = out.stdout.find('<pre id="result">')
    end = out.stdout.find("</pre>", start)
    if start < 0 or end < 0:
        print(out.stdout[-2000:], out.stderr[-2000:])
        raise SystemExit(f"chromium returned no result for {url}")
    text = out.stdout[start + len('<pre id="result">'):end]
    return json.loads(html.unescape(text))


def preflight_checks(api_port, allowed, denied):
    headers = {"Origin": allowed, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization,content-type"}
    status, h, body = request(api_port, "OPTIONS", "/auth/register", headers)
    expect("preflight from the allowed origin: status", status, 204)
    cors = {k: v for k, v in h.items() if k.startswith("access-control-")}
    expect("preflight from the allowed origin: CORS headers", cors, {
        "access-control-allow-origin": allowed,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": ALLOW_METHODS,
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-max-age": "600",
    })
    expect("preflight from the allowed origin: Vary", h.get("vary"), "Origin")
    headers["Origin"] = denied
    status, h, _ = request(api_port, "OPTIONS", "/auth/register", headers)
    cors = {k: v for k, v in h.items() if k.startswith("access-control-")}
    expect("preflight from the disallowed origin: CORS headers", cors, {})
    status, h, _ = request(api_port, "GET", "/auth/health", {"Origin": allowed})
    cors = {k: v for k, v in h.items() if k.startswith("access-control-")}
    expect("simple GET from the allowed origin: CORS headers", cors, {
        "access-control-allow-origin": allowed,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": EXPOSE_HEADERS,
    })


def main():
    binary, chromium = sys.argv[1], sys.argv[2]
    api_port, allowed_port, denied_port = free_port(), free_port(), free_port()
    allowed = f"http://127.0.0.1:{allowed_port}"
    denied = f"http://127.0.0.1:{denied_port}"
    data_dir = tempfile.mkdtemp(prefix="cors-bastion-")
    env = dict(os.environ, BASTION_DATA_DIR=data_dir, BASTION_ADDR=f"127.0.0.1:{api_port}",
               ALLOWED_ORIGINS=allowed, RATE_LIMIT_REGISTER_IP="100/60", RUST_LOG="warn")
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL)
    pages = [serve_pages(allowed_port), serve_pages(denied_port)]
    try:
        for _ in range(200):
            try:
                if request(api_port, "GET", "/auth/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("bastion-local did not start")
        print(f"bastion-local pid {server.pid} on 127.0.0.1:{api_port}; allowed {allowed}; disallowed {denied}")
        preflight_checks(api_port, allowed, denied)

        api = f"http://127.0.0.1:{api_port}"
        for origin, email, permitted in [(allowed, "allowed@example.com", True),
                                         (denied, "denied@example.com", False)]:
            query = urllib.parse.urlencode({"api": api, "email": email})
            result = browser(chromium, f"{origin}/page.html?{query}")
            who = "allowed" if permitted else "disallowed"
            if permitted:
                get = result["simple_get"]
                expect(f"{who}: simple GET read", (get["ok"], get.get("status")), (True, 200))
                expect(f"{who}: simple GET body", json.loads(get.get("body", "null")), {"status": "ok"})
                post = result["preflighted_post"]
                expect(f"{who}: preflighted POST read", (post["ok"], post.get("status")), (True, 201))
                expect(f"{who}: POST body has an access token",
                       "access_token" in json.loads(post.get("body", "{}")), True)
            else:
                expect(f"{who}: simple GET rejected", result["simple_get"], {"ok": False, "error": "TypeError"})
                expect(f"{who}: preflighted POST rejected", result["preflighted_post"],
                       {"ok": False, "error": "TypeError"})
            expect(f"{who}: unlisted request header rejected at preflight", result["unlisted_header"],
                   {"ok": False, "error": "TypeError"})
            # The POST reached the server only where the preflight allowed it.
            expect(f"{who}: server saw the POST (registering again)", register_status(api_port, email),
                   409 if permitted else 201)
    finally:
        for p in pages:
            p.shutdown()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    if failures:
        print(f"{len(failures)} CORS check(s) failed: {failures}")
        sys.exit(1)
    print("all CORS browser checks passed")


if __name__ == "__main__":
    main()
