"""okvm serve under load and abuse: 200 connections at once, a stream client that never reads
(dropped after --stall-timeout, and the others keep their frame rate meanwhile), and a WebSocket
client that never reads."""
import socket
import threading
import time

from serve_util import Mjpeg, Server, WebSocket, check, fail, fixture_frames, metrics

frames = fixture_frames()
FPS = 25

with Server("--stall-timeout", "2", fps=FPS) as s:
    clients = [Mjpeg(s.port) for _ in range(200)]
    got = [c.part()[1] for c in clients]
    check(all(g in frames for g in got), "200 stream clients at once each get a whole frame")
    mt = metrics(s)
    check(mt["okvm_serve_stream_clients"] == 200, "/metrics counts 200 stream clients")
    for c in clients:
        c.close()

    # A client that never reads, with a tiny receive window: it fills up within a few frames.
    stalled = Mjpeg(s.port, rcvbuf=4096)
    reader = Mjpeg(s.port)
    reader.part()
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 4:
        reader.part()
        n += 1
    fps = n / (time.monotonic() - t0)
    print(f"reader: {fps:.1f} fps while another client stalls (source {FPS})")
    check(fps >= FPS * 0.7, "a stalled client does not slow a reading one")
    deadline = time.monotonic() + 40
    while metrics(s)["okvm_serve_stream_stalls_total"] < 1:
        if time.monotonic() > deadline:
            fail("the stalled client was never dropped")
        reader.part()
    mt = metrics(s)
    check(mt["okvm_serve_stream_clients"] == 1 and mt["okvm_serve_stream_stalls_total"] == 1,
          "the stalled client is dropped after --stall-timeout; the reader stays")
    stalled.close()
    reader.close()

    # A slow reader (2 KiB every 10 ms, a tiny receive window): its socket is full in the middle
    # of every part, so each part goes out in pieces, from the frame's arrival and then from
    # writeable callbacks. Every part it gets is still a whole source frame, newer than the last,
    # and a fast reader beside it keeps its frame rate.
    class Slow(Mjpeg):
        def _fill(self):
            time.sleep(0.01)
            d = self.sock.recv(2048)
            if not d:
                raise EOFError("stream closed")
            self.buf += d

    slow_parts = []

    def slow_read():
        c = Slow(s.port, rcvbuf=4096)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4:
            slow_parts.append(c.part())
        c.close()

    th = threading.Thread(target=slow_read)
    th.start()
    reader = Mjpeg(s.port)
    reader.part()
    t0, n = time.monotonic(), 0
    while th.is_alive():
        reader.part()
        n += 1
    fps = n / (time.monotonic() - t0)
    reader.close()
    stamps = [float(h["x-timestamp"]) for h, _ in slow_parts]
    print(f"slow reader: {len(slow_parts)} parts in 4 s; fast reader {fps:.1f} fps")
    check(len(slow_parts) >= 4 and all(j in frames for _, j in slow_parts),
          "a slow reader gets whole source frames, each written in pieces")
    check(all(b > a for a, b in zip(stamps, stamps[1:])), "and each newer than the last")
    check(fps >= FPS * 0.7, "a slow reader does not slow a fast one")

    # A WebSocket client that sends and never reads.
    quiet = WebSocket(s.port)
    quiet.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    talker = WebSocket(s.port)
    talker.recv_until(lambda m: m["type"] == "state")
    for i in range(3000):
        try:
            quiet.send({"type": "ping", "t": i, "pad": "p" * 200})
        except OSError:
            break
    t0 = time.monotonic()
    talker.sync()
    check(time.monotonic() - t0 < 2, "other WebSocket clients keep answering promptly")
    check(s.alive(), "the server survives a WebSocket client that never reads")
    talker.close()
    quiet.sock.close()
