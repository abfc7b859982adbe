#!/usr/bin/env python3
"""Idle ActiveSync Ping long-polls, for bench/gateway.sh.

  idle-connections.py upstream PORT STATUS [--answer-after SECS]
      A mock Exchange: reads each request head and its Content-Length body,
      then holds the connection without answering (or answers after SECS).
      Writes "held N closed N" to STATUS whenever the count changes.
  idle-connections.py clients HOST:PORT N STATUS
      Opens N connections, each sending one Ping with a body, then waits for
      the answers. Writes "sent N answered N failed N" to STATUS.

Both run until SIGTERM. Standard library only; each side needs N descriptors,
so they run as two processes.
"""

import asyncio
import os
import signal
import sys

PING_BODY = bytes.fromhex("03016a00000d454803343730000101")  # WBXML Ping, HeartbeatInterval 470


def write_status(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


async def wait_for_term():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()


async def upstream(port, status, answer_after):
    counts = {"held": 0, "closed": 0}
    dirty = asyncio.Event()

    async def conn(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                counts["held"] += 1
                dirty.set()
                if answer_after is None:
                    await reader.read()  # until the gateway closes
                    break
                await asyncio.sleep(answer_after)
                body = b"\x03\x01\x6a\x00\x00\x0d\x45\x47\x03\x31\x00\x01\x01"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
                counts["held"] -= 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            counts["closed"] += 1
            dirty.set()
            writer.close()

    async def reporter():
        while True:
            await dirty.wait()
            dirty.clear()
            write_status(status, "held %(held)d closed %(closed)d" % counts)
            await asyncio.sleep(0.2)

    server = await asyncio.start_server(conn, "127.0.0.1", port, backlog=4096)
    write_status(status, "held 0 closed 0")
    task = asyncio.create_task(reporter())
    await wait_for_term()
    os._exit(0)  # the kernel closes the held connections; no cancellation noise


async def clients(target, n, status):
    host, _, port = target.rpartition(":")
    counts = {"sent": 0, "answered": 0, "failed": 0}
    writers = []
    sem = asyncio.Semaphore(256)  # connects in flight: stay inside the listen backlog

    async def one(i):
        async with sem:
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(
                    (
                        "POST /Microsoft-Server-ActiveSync?Cmd=Ping&User=u&DeviceId=D%d&DeviceType=iPhone HTTP/1.1\r\n"
                        "Host: %s\r\n"
                        "User-Agent: Apple-iPhone9C1/1402.100\r\n"
                        "MS-ASProtocolVersion: 16.1\r\n"
                        "Content-Type: application/vnd.ms-sync.wbxml\r\n"
                        "Content-Length: %d\r\n\r\n" % (i, target, len(PING_BODY))
                    ).encode()
                    + PING_BODY
                )
                await writer.drain()
            except OSError:
                counts["failed"] += 1
                return
            counts["sent"] += 1
            writers.append(writer)
        # Held: any answer or close before the end is counted.
        try:
            got = await reader.read(1)
            counts["answered" if got else "failed"] += 1
        except OSError:
            counts["failed"] += 1

    tasks = [asyncio.create_task(one(i)) for i in range(n)]

    async def reporter():
        last = None
        while True:
            now = "sent %(sent)d answered %(answered)d failed %(failed)d" % counts
            if now != last:
                write_status(status, now)
                last = now
            await asyncio.sleep(0.2)

    rep = asyncio.create_task(reporter())
    await wait_for_term()
    os._exit(0)


def main(argv):
    if len(argv) >= 4 and argv[1] == "upstream":
        after = float(argv[5]) if len(argv) >= 6 and argv[4] == "--answer-after" else None
        asyncio.run(upstream(int(argv[2]), argv[3], after))
    elif len(argv) == 5 and argv[1] == "clients":
        asyncio.run(clients(argv[2], int(argv[3]), argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
