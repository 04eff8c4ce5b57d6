"""``python -m local_stack [--port 3000]`` — what ``make run`` starts."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from .child import READY, print_urls
from .server import LocalStack
from .web import WebApp, local_config, stale_sources

STOP_GRACE_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description="Parley's local stack: the API backed by emulated AWS.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000; 0 = any free)")
    parser.add_argument("--web-port", type=int, default=None,
                        help="port of the web app (default: port + 2; 0 = any free)")
    parser.add_argument("--no-web", action="store_true", help="serve the APIs only, not the web app")
    parser.add_argument("--cors-origin", default=None,
                        help="the browser origin the APIs allow (default: the web app's own, e.g. "
                             "http://127.0.0.1:3002; http://localhost:5173 for Vite's dev server)")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args()

    web = None
    parameters = {}
    if not args.no_web:
        # Bound first: its origin is the one the APIs allow (CORS), as the distribution's is in AWS.
        web = WebApp(args.host, args.web_port if args.web_port is not None else (args.port + 2 if args.port else 0))
        parameters["CorsAllowOrigin"] = web.url
    if args.cors_origin:
        parameters["CorsAllowOrigin"] = args.cors_origin
    local = LocalStack(host=args.host, port=args.port, parameters=parameters, verbose=args.verbose).start()
    device = "my-device-0001"
    print_urls(local, device)
    websocket_url = getattr(local, "websocket_url", "")
    if web is not None:
        web.start(local_config(local.url, websocket_url))
        local.on_stop(web.stop)
        stale = stale_sources()
        if not (web.dist / "index.html").exists():
            print("  Web app:  not built - run `make run` (it builds web/ with npm), or `make web`", flush=True)
        elif stale:
            print(f"  Web app:  {web.url}/  (web/ changed since the last build, e.g. {stale[0].name}: "
                  "`make web` rebuilds it)", flush=True)
        else:
            print(f"  Web app:  {web.url}/   <- open this in a browser", flush=True)
    print(f"  API docs: {local.url}/docs   (interactive, from {local.url}/openapi.json)", flush=True)
    print(f"  Try:      curl -s -H 'X-Device-Id: {device}' {local.url}/settings", flush=True)
    print(f"            curl -s -X POST -H 'X-Device-Id: {device}' -H 'Content-Type: application/json' "
          f"-d '{{\"topic\": \"travel\"}}' {local.url}/sessions", flush=True)
    print(f"  Clients of the original tutor backend's action API: base URL {local.url}, header X-Device-Id "
          f"(e.g. {{\"action\": \"get_settings\"}} to {local.url}/chat)", flush=True)
    print(READY, flush=True)

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
        # Stopping waits for the servers' threads; on a loaded machine one may still be busy (a
        # recognition, a workflow step). Ctrl-C must end the stack all the same: after a grace
        # period the process exits without them (they are daemon threads; nothing is persisted).
        stopping = threading.Thread(target=local.stop, name="parley-stop", daemon=True)
        stopping.start()
        stopping.join(STOP_GRACE_SECONDS)
        if stopping.is_alive():
            print(f"Stopped. (background work still running after {STOP_GRACE_SECONDS:.0f} s was cut short)",
                  flush=True)
            os._exit(0)
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
