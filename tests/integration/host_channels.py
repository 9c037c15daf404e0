"""A traced Python program for the host-channel tests: a sender process sleeps SEND_AFTER_S of
virtual time, writes its virtual clock into a channel and at once sleeps AFTER_S more; the
receiver blocks on the channel without a timeout. Prints `waited=` (the receiver's wait) and
`lag=` (receive time minus send time): a jump that passed the message would make lag about
AFTER_S.

    python host_channels.py socketpair|pipe|eventfd|tcp|semaphore
"""

import multiprocessing
import os
import socket
import struct
import sys
import time

SEND_AFTER_S = 2.0
AFTER_S = 10.0
HOST_WORK_S = 0.02  # the TCP server's host work before it replies (real CPU time)


def stamp() -> bytes:
    return struct.pack("d", time.monotonic())


def sender(write) -> None:
    time.sleep(SEND_AFTER_S)
    write(stamp())
    time.sleep(AFTER_S)


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def fork_sender(write) -> int:
    pid = os.fork()
    if pid == 0:
        sender(write)
        os._exit(0)
    return pid


def tcp_server(listener: socket.socket) -> None:
    conn, _ = listener.accept()  # blocking accept: an fd wait
    request = conn.recv(8)  # blocking recv of the client's request
    spin(HOST_WORK_S)
    conn.sendall(request + stamp())
    time.sleep(AFTER_S)


def main(mode: str) -> None:
    t0 = time.monotonic()
    if mode == "socketpair":
        a, b = socket.socketpair()
        pid = fork_sender(b.send)
        data = a.recv(8)
    elif mode == "pipe":
        r, w = os.pipe()
        pid = fork_sender(lambda m: os.write(w, m))
        data = os.read(r, 8)
    elif mode == "eventfd":
        efd = os.eventfd(0)
        pid = fork_sender(lambda m: os.write(efd, m))
        data = os.read(efd, 8)  # the counter: the sender's stamp as a number
    elif mode == "semaphore":
        sem = multiprocessing.get_context("fork").Semaphore(0)
        r, w = os.pipe()
        pid = fork_sender(lambda m: (os.write(w, m), sem.release()))
        sem.acquire()  # sem_wait on a semaphore shared between processes
        data = os.read(r, 8)
    elif mode == "tcp":
        listener = socket.create_server(("127.0.0.1", 0))
        pid = os.fork()
        if pid == 0:
            tcp_server(listener)
            os._exit(0)
        time.sleep(SEND_AFTER_S)
        c = socket.create_connection(listener.getsockname())
        c.sendall(stamp())
        data = c.recv(16)[8:]  # blocking recv of the reply
        t0 += SEND_AFTER_S
    else:
        raise SystemExit(f"unknown mode {mode}")
    t1 = time.monotonic()
    (sent,) = struct.unpack("d", data)
    print(f"waited={t1 - t0:.6f}")
    print(f"lag={t1 - sent:.6f}")
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main(sys.argv[1])
