"""Hostile scrape targets on loopback, for bench/hostile-targets.sh.

    python3 bench/hostile_targets.py PORT [BOMB_MIB]

Paths:
  /slow      one byte per second, for ever (the scrape times out)
  /labels    one series with 1,000,000 labels (about 11 MB), then 200 OK
  /endless   a chunked body that never ends (64 KiB of samples per write)
  /bomb      gzip: BOMB_MIB MiB (default 2048) of samples inflated from a
             few MiB on the wire
  /fine      a small well-formed exposition (the baseline)
Bodies are rendered once at start (after the port is bound), so serving
costs little.
"""

import http.server
import socketserver
import sys
import time
import zlib

PORT = int(sys.argv[1])
BOMB_MIB = int(sys.argv[2]) if len(sys.argv) > 2 else 2048

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A scraper that gives up on a body resets the connection.
        pass


LINE = b"hostile_sample_total 1\n"
CHUNK = LINE * ((64 << 10) // len(LINE))


def labels_body():
    pairs = ",".join(f'l{i}="v"' for i in range(1_000_000))
    return f"one_wide_series{{{pairs}}} 1\n".encode()


def bomb_body():
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = LINE * ((1 << 20) // len(LINE))
    out = [z.compress(block) for _ in range(BOMB_MIB)]
    out.append(z.flush())
    return b"".join(out)


SERVER = Server(("127.0.0.1", PORT), None)
LABELS = labels_body()
BOMB = bomb_body()
FINE = b"".join(f'fine_metric{{i="{i}"}} {i}\n'.encode() for i in range(100))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, length=None, encoding=None):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        try:
            if self.path == "/slow":
                self.head(length=1 << 30)
                while True:
                    self.wfile.write(b"#")
                    self.wfile.flush()
                    time.sleep(1)
            elif self.path == "/labels":
                self.head(length=len(LABELS))
                self.wfile.write(LABELS)
            elif self.path == "/endless":
                self.head()
                frame = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
                while True:
                    self.wfile.write(frame)
            elif self.path == "/bomb":
                self.head(length=len(BOMB), encoding="gzip")
                self.wfile.write(BOMB)
            else:
                self.head(length=len(FINE))
                self.wfile.write(FINE)
        except (BrokenPipeError, ConnectionResetError):
            pass


SERVER.RequestHandlerClass = Handler
SERVER.serve_forever()
