"""``python -m local_stack [--port 3000]`` — what ``make run`` starts."""

from __future__ import annotations

import argparse
import signal
import threading

from .server import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description="Parley's local stack: the API backed by emulated AWS.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000; 0 = any free)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args()

    local = LocalStack(host=args.host, port=args.port, verbose=args.verbose).start()
    device = "my-device-0001"
    print(f"Parley local stack listening on {local.url}  (AWS emulated at {local.moto_endpoint})", flush=True)
    print(f"  OpenAPI:  {local.url}/openapi.json", flush=True)
    print(f"  Try:      curl -s -H 'X-Device-Id: {device}' {local.url}/settings", flush=True)
    print(f"            curl -s -X POST -H 'X-Device-Id: {device}' -H 'Content-Type: application/json' "
          f"-d '{{\"topic\": \"travel\"}}' {local.url}/sessions", flush=True)
    print(f"  Seed 000 clients: base URL {local.url}, header X-Device-Id (e.g. {{\"action\": \"get_settings\"}} "
          f"to {local.url}/chat)", flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        # A timed wait: Ctrl-C (SIGINT) may be delivered to another thread, and an untimed wait
        # in the main thread would then never see the KeyboardInterrupt.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        local.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
