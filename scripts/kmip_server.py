#!/usr/bin/env python3
"""A PyKMIP server for the tests, on 127.0.0.1.

Why a wrapper rather than `pykmip-server -f server.conf`:
- it binds port 0 and prints the port it got (`LISTENING <port>`), so tests never race for ports;
- it exits, with the manager process PyKMIP forks, on SIGINT or SIGTERM (PyKMIP alone is slow to
  stop on SIGTERM), and with --stop-on-stdin-eof also as soon as its standard input closes, which
  the tests use so that a test process that dies never leaves a server behind (without it, it
  runs in the background: `... &`);
- a port already in use is said plainly, not as a traceback;
- with --username/--password it checks the KMIP Username and Password credential of every
  request, as a production key server would (stock PyKMIP ignores credentials unless an external
  SLUGS service is configured), answering "Authentication Not Successful" otherwise.

Usage: kmip_server.py --dir DIR --cert PEM --key PEM --ca PEM [--port N]
                      [--username U --password P] [--stop-on-stdin-eof]
"""

import argparse
import errno
import multiprocessing
import os
import signal
import sys
import threading
import warnings

warnings.filterwarnings("ignore")

from kmip.services.server import server as kmip_server  # noqa: E402
from kmip.services.server import session as kmip_session  # noqa: E402


def require_credential(username, password):
    """Make every session demand this Username and Password credential."""
    original = kmip_session.KmipSession.authenticate

    def authenticate(self, certificate, request):
        header = request.request_header
        credentials = header.authentication.credentials if header.authentication else []
        for credential in credentials:
            value = credential.credential_value
            if getattr(value, "username", None) == username and getattr(value, "password", None) == password:
                return original(self, certificate, request)
        raise PermissionError("wrong or missing username/password credential")

    kmip_session.KmipSession.authenticate = authenticate


def stop(*_):
    """Exit now, with the multiprocessing manager PyKMIP forks (it would outlive us otherwise)."""
    for child in multiprocessing.active_children():
        child.kill()
    os._exit(0)


def stop_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--stop-on-stdin-eof", action="store_true")
    args = parser.parse_args()

    if args.username is not None:
        require_credential(args.username, args.password)

    policies = os.path.join(args.dir, "policies")
    os.makedirs(policies, exist_ok=True)
    server = kmip_server.KmipServer(
        hostname="127.0.0.1",
        port=args.port,
        certificate_path=args.cert,
        key_path=args.key,
        ca_path=args.ca,
        auth_suite="TLS1.2",
        config_path=None,
        log_path=os.path.join(args.dir, "server.log"),
        policy_path=policies,
        enable_tls_client_auth=True,
        logging_level="INFO",
        database_path=os.path.join(args.dir, "pykmip.db"),
    )
    # PyKMIP treats port 0 as "not configured"; set it after the configuration is read.
    server.config.settings["port"] = args.port
    try:
        server.start()
    except Exception as error:  # PyKMIP wraps the OSError in its NetworkingError
        cause = error if isinstance(error, OSError) else error.__context__
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            print(f"port {args.port} is in use: stop what listens there, or choose another "
                  "with --port", file=sys.stderr)
            sys.exit(1)
        raise
    # PyKMIP binds in start() but listens only in serve(); listen now, so that the port is
    # accepting connections by the time we announce it (serve() listening again is harmless).
    server._socket.listen(5)
    port = server._socket.getsockname()[1]
    if args.stop_on_stdin_eof:
        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING {port}", flush=True)
    try:
        server.serve()
    finally:
        stop()


if __name__ == "__main__":
    main()
