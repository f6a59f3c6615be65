"""Where Alertmanager's notifications land in the compose check: a chat webhook and a mail server.

    python -m devstack.alert_receiver [--http-port 8080] [--smtp-port 2525]

Prints one line per notification on standard output, which scripts/compose-check
reads from the container's log:

    webhook firing RewixServiceDown job=status_poller instance=172.18.0.9:9100
    e-mail to=<owner@shop.example> subject=[FIRING:1] RewixServiceDown (...)

The SMTP side speaks just enough of the protocol for Alertmanager's e-mail
(EHLO, MAIL, RCPT, DATA, QUIT; no TLS, no authentication): a stand-in for the
operator's mail server, never one to use.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BYTES = 1024 * 1024


def say(line: str) -> None:
    print(line, flush=True)


def describe_alerts(payload: dict) -> list[str]:
    """One line per alert of Alertmanager's webhook payload (version 4)."""
    lines = []
    for alert in payload.get("alerts", []):
        labels = alert.get("labels", {})
        rest = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k in ("job", "instance", "severity"))
        lines.append(f"webhook {alert.get('status', '?')} {labels.get('alertname', '?')} {rest}".rstrip())
    return lines


class WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BYTES:
            self.send_error(413)
            return
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_error(400, "not JSON")
            return
        for line in describe_alerts(payload):
            say(line)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (the healthcheck)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:  # one line per alert is enough
        return


class SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def reply(self, text: str) -> None:
        self.wfile.write(f"{text}\r\n".encode())

    def handle(self) -> None:
        recipients: list[str] = []
        self.reply("220 alert-receiver ESMTP")
        while line := self.rfile.readline(4096):
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 alert-receiver")
            elif verb == "RCPT":
                recipients.append(line.decode(errors="replace").strip().split(":", 1)[-1])
                self.reply("250 OK")
            elif verb in ("MAIL", "RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                message = self.read_message()
                subject = email.message_from_bytes(message, policy=email.policy.default).get("Subject", "")
                say(f"e-mail to={','.join(recipients)} subject={' '.join(str(subject).split())}")
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")

    def read_message(self) -> bytes:
        lines = []
        size = 0
        while (line := self.rfile.readline(65536)) and line not in (b".\r\n", b".\n"):
            size += len(line)
            if size <= MAX_BYTES:
                lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.alert_receiver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--smtp-port", type=int, default=2525)
    args = parser.parse_args(argv)
    web = ThreadingHTTPServer((args.host, args.http_port), WebhookHandler)
    smtp = SmtpServer((args.host, args.smtp_port), SmtpHandler)
    for server in (web, smtp):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    say(f"listening: webhook on port {args.http_port}, SMTP on port {args.smtp_port}")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    web.shutdown()
    smtp.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
