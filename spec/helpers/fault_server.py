#!/usr/bin/env python3
"""A misbehaving HTTP server for the specs, on 127.0.0.1 (port 0 = any).

Prints its port, then serves until killed:
  /reset          headers and part of the body, then a connection reset
  /stall          accepts and never answers
  /stall/<key>    the same, counted in /attempts/<key> once it arrived
  /garbage        a response that is not HTTP
  /huge-header    a 1 MB header
  /endless        a body that never ends
  /flaky/<key>/<n>[/<s>]  503 (Retry-After: s, default 0) for the first n
                  requests, then 200
  /attempts/<key> how many requests /flaky/<key> got
  /stats          connections accepted, most open at once (of those
                  accepted since the last /stats/reset), open now
  /stats/reset    starts counting "most open at once" again, leaving out
                  the connections open now (their close may be seen late,
                  when the handler thread gets to run); answers 0
  /slow           answers after 0.05 s (to keep connections busy)
  /headers        the request's header lines, as the body
  /redirect-to/<percent-encoded URL>  302 to that URL
  /partial        headers and 1000 bytes of a 100000-byte body, then stalls
  /trickle        a 20-byte body, one byte every 0.05 s
  /trickle/<n>/<ms>  an n-byte body, one byte every ms milliseconds
"""
import socket, struct, sys, threading, time, urllib.parse

lock = threading.Lock()
attempts = {}
stats = {"accepted": 0, "open": 0, "max_open": 0, "gen": 0, "open_gen": 0}


def respond(conn, status, body, extra=""):
    head = "HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra)
    conn.sendall(head.encode() + body)


def read_request(f):
    line = f.readline()
    if not line:
        return None, b""
    headers = b""
    while True:
        h = f.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        headers += h
    return line.decode("latin-1").split()[1], headers


def handle(conn, gen):
    f = conn.makefile("rb")
    try:
        while True:
            path, headers = read_request(f)
            if path is None:
                return
            if path == "/headers":
                respond(conn, "200 OK", headers)
                continue
            if path.startswith("/redirect-to/"):
                to = urllib.parse.unquote(path[len("/redirect-to/"):])
                respond(conn, "302 Found", b"", "Location: %s\r\n" % to)
                continue
            if path == "/partial":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
                time.sleep(3600)
            if path == "/trickle" or path.startswith("/trickle/"):
                n, ms = (path.split("/")[2:] + ["20", "50"])[:2]
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                             % int(n))
                for _ in range(int(n)):
                    time.sleep(int(ms) / 1000)
                    conn.sendall(b"t")
                continue
            if path == "/reset":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if path.startswith("/stall/"):
                with lock:
                    key = path.split("/")[2]
                    attempts[key] = attempts.get(key, 0) + 1
            if path == "/stall" or path.startswith("/stall/"):
                time.sleep(3600)
            if path == "/garbage":
                conn.sendall(b"HELLO THIS IS NOT HTTP\r\n\r\n")
                return
            if path == "/huge-header":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\nContent-Length: 0\r\n\r\n")
                return
            if path == "/endless":
                conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
                while True:
                    conn.sendall(b"y" * 65536)
            if path.startswith("/flaky/"):
                key, n, after = (path.split("/")[2:] + ["0"])[:3]
                with lock:
                    attempts[key] = attempts.get(key, 0) + 1
                    count = attempts[key]
                if count <= int(n):
                    respond(conn, "503 Service Unavailable", b"busy",
                            "Retry-After: %s\r\n" % after)
                else:
                    respond(conn, "200 OK", b"finally")
                continue
            if path.startswith("/attempts/"):
                with lock:
                    respond(conn, "200 OK", str(attempts.get(path.split("/")[2], 0)).encode())
                continue
            if path == "/stats":
                with lock:
                    body = ("%d %d %d" % (stats["accepted"], stats["max_open"],
                                          stats["open"])).encode()
                respond(conn, "200 OK", body)
                continue
            if path == "/stats/reset":
                with lock:
                    stats["gen"] += 1
                    stats["open_gen"] = stats["max_open"] = 0
                    respond(conn, "200 OK", b"0")
                continue
            if path == "/slow":
                time.sleep(0.05)
                respond(conn, "200 OK", b"slow")
                continue
            respond(conn, "404 Not Found", b"no")
    except OSError:
        pass
    finally:
        with lock:
            stats["open"] -= 1
            if gen == stats["gen"]:
                stats["open_gen"] -= 1
        try:
            conn.close()
        except OSError:
            pass


def main():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    srv.listen(1024)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        with lock:
            stats["accepted"] += 1
            stats["open"] += 1
            stats["open_gen"] += 1
            stats["max_open"] = max(stats["max_open"], stats["open_gen"])
            gen = stats["gen"]
        threading.Thread(target=handle, args=(conn, gen), daemon=True).start()


main()
