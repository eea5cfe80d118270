"""``photocaption serve``: its arguments and start-up (safety checks first, then bind, load the model, serve)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

from desktop_app.arguments import HelpFormatter, number, whole_number
from desktop_app.serve.access import AccessError, default_token_path, is_loopback, load_or_create_token

EXIT_ERROR = 2  # desktop_app.cli's code for bad arguments or model
INSTALL_HINT = 'install the serve extra: pip install -e ".[serve]"'


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    from desktop_app.serve.payload import MAX_UPLOAD_MB
    from desktop_app.serve.service import ServiceOptions

    defaults = ServiceOptions()
    p = sub.add_parser("serve", help="caption photos for other programs over HTTP (loopback, token)",
                       formatter_class=HelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback needs the token (it is never turned off there)")
    p.add_argument("--port", type=whole_number(0, 65535), default=8765, help="port (0 = any free port, printed at start)")
    p.add_argument("--model", type=Path, help="model bundle folder (default: the bundled model)")
    p.add_argument("--provider", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where the model runs: auto = the GPU (CUDA) when it really works, else the CPU")
    p.add_argument("--threads", type=whole_number(0), default=0,
                   help="model threads of each stage (0 = half the cores: the encoder and the search run at once)")
    p.add_argument("--allow-folder", type=Path, action="append", default=[], metavar="DIR",
                   help="let clients caption files under this folder by path (repeatable; none by default)")
    p.add_argument("--no-token", action="store_true",
                   help="ask no token (loopback only: then any program on this machine can call it)")
    p.add_argument("--token-file", type=Path, help=f"where the token is kept (default: {default_token_path()})")
    p.add_argument("--max-upload-mb", type=number(above=0), default=float(MAX_UPLOAD_MB),
                   help="largest photo upload accepted (413 above)")
    p.add_argument("--max-queue", type=whole_number(1), default=defaults.max_queue,
                   help="photos accepted and not yet answered; more are answered 503 with Retry-After")
    p.add_argument("--max-batch", type=whole_number(1), default=defaults.max_batch, help="photos per model batch")
    p.add_argument("--max-wait-ms", type=number(least=0), default=defaults.max_wait * 1000,
                   help="how long a photo waits for others to share its batch")
    p.add_argument("--decode-workers", type=whole_number(1), default=defaults.decode_workers, help="threads decoding photos")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(run=cmd_serve)


class _Stopped(Exception):
    """SIGTERM arrived (after uvicorn's graceful stop)."""


def stage_threads() -> int:
    """Model threads for each of the service's two stages: half the cores, since the encoder and the search run at
    once. Measured on 2 cores (``benchmarks/serve_load.py --server-threads 1`` vs ``2``): 84-86% of the CLI's
    throughput against 81%, and 107-108% of its CPU time per photo against 118%; captions are identical."""
    return max(1, (os.cpu_count() or 2) // 2)


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


def _fail(message: str) -> int:
    print(f"photocaption serve: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":  # on Windows this flag lets another program take the port over
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)  # from here clients queue up rather than being refused while the server starts
    except OSError:
        sock.close()
        raise
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    loopback = is_loopback(args.host)
    if args.no_token and not loopback:
        return _fail(f"--no-token is only allowed on a loopback address (127.0.0.1, ::1, localhost); {args.host} "
                     "can be reached from other machines, so every request there must carry the token")
    try:
        import python_multipart  # noqa: F401  (Starlette's form parser)
        import uvicorn
        from desktop_app.serve.app import AppSettings, build_app
    except ImportError as exc:
        missing = (exc.name or "its web libraries").split(".")[0]
        return _fail(f"photocaption serve needs {missing}: {INSTALL_HINT}")
    from desktop_app.captioning.captioner import Captioner
    from desktop_app.serve.folders import AllowedFolders
    from desktop_app.serve.service import CaptionService, ServiceOptions

    try:
        folders = AllowedFolders(args.allow_folder)
    except ValueError as exc:
        return _fail(str(exc))
    token, token_path = None, args.token_file or default_token_path()
    if args.no_token:
        print("no token asked (--no-token): any program on this machine can call this server", flush=True)
    else:
        try:
            token, created = load_or_create_token(token_path)
        except (AccessError, OSError) as exc:
            return _fail(f"cannot use the API token: {exc}")
        print(f"API token (new; kept in {token_path}, shown only this once): {token}" if created
              else f"API token: in {token_path}", flush=True)
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    captioner = Captioner.open(args.model, provider=args.provider, threads=args.threads or stage_threads())
    service = CaptionService(captioner, ServiceOptions(max_batch=args.max_batch, max_wait=args.max_wait_ms / 1000,
                                                       max_queue=args.max_queue, decode_workers=args.decode_workers))
    app = build_app(service, AppSettings(token=token, max_upload=int(args.max_upload_mb * 2**20),
                                         loopback_only=loopback, folders=folders))
    print(f"model {captioner.model_id} on {captioner.provider}", flush=True)
    print(f"reading files under: {', '.join(map(str, folders.folders))}" if folders
          else "reading no files by path (add --allow-folder DIR)", flush=True)
    if not loopback:
        print(f"listening beyond this machine on {host}: requests and the token travel unencrypted, so use it "
              "only on a network you trust (or behind an HTTPS proxy)", flush=True)
    config = uvicorn.Config(app, log_level="info" if args.access_log else "warning", access_log=args.access_log,
                            lifespan="off", timeout_graceful_shutdown=5, server_header=False)
    print(f"serving {url}  (API page: {url}/docs; Ctrl-C stops)", flush=True)
    # uvicorn finishes the requests in hand on Ctrl-C or SIGTERM, then raises the signal again:
    # here that ends run() with an exception, so the model thread is stopped before exit.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.close()
        sock.close()
    print("stopped", flush=True)
    return 0
