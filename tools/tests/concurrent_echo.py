"""Opens N TCP connections to HOST:PORT and holds them all open; on each, once
connected, writes 8 bytes and reads the 8 echoed back. Prints one line:
`served=S failed=F open_max=O seconds=T`. Used by tap_concurrency.rs (run
under `timeout`, in the test's own network namespace)."""

import asyncio
import resource
import sys
import time


async def one(host, port, i, held, sem):
    async with sem:
        reader, writer = await asyncio.open_connection(host, port)
    msg = (i % 100000000).to_bytes(8, "big")
    writer.write(msg)
    await writer.drain()
    back = await reader.readexactly(8)
    held.append(writer)
    return back == msg


async def main(host, port, n, connecting):
    sem = asyncio.Semaphore(connecting)
    held = []
    start = time.monotonic()
    results = await asyncio.gather(*(one(host, port, i, held, sem) for i in range(n)), return_exceptions=True)
    seconds = time.monotonic() - start
    served = sum(1 for r in results if r is True)
    errors = [r for r in results if r is not True]
    print(f"served={served} failed={len(errors)} open_max={len(held)} seconds={seconds:.3f}", flush=True)
    if errors:
        print(f"first error: {errors[0]!r}", file=sys.stderr)
    for w in held:
        w.close()


if __name__ == "__main__":
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    connecting = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 1024, n + 1024))
    asyncio.run(main(host, port, n, connecting))
