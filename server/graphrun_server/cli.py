"""`graphrun serve`: the server's part of the `graphrun` command.

The command line belongs to the client distribution (graphrun-client), which must install
without the server's dependencies; it finds this command through the `graphrun.commands`
entry point the server distribution declares, and says how to install the server when it
is absent.
"""

from __future__ import annotations

import argparse


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """Add `serve` to the `graphrun` command's subcommands."""
    serve = commands.add_parser("serve", help="run a graphrun server")
    serve.add_argument("--config", help="langgraph.json to load graphs from (env GRAPHRUN_CONFIG)")
    serve.add_argument("--host", help="address to listen on (env GRAPHRUN_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (env GRAPHRUN_PORT, default 50051)")
    serve.add_argument("--database-url", help="PostgreSQL DSN (env GRAPHRUN_DATABASE_URL; default: embedded)")
    serve.add_argument("--data-dir", help="embedded PostgreSQL's data directory (env GRAPHRUN_DATA_DIR)")
    serve.add_argument("--tls-cert", dest="server_tls_cert", metavar="PEM",
                       help="serve TLS with this certificate chain (env GRAPHRUN_TLS_CERT)")
    serve.add_argument("--tls-key", dest="server_tls_key", metavar="PEM",
                       help="the certificate's private key (env GRAPHRUN_TLS_KEY)")
    serve.add_argument("--tls-client-ca", metavar="PEM",
                       help="require client certificates signed by this CA: mutual TLS (env GRAPHRUN_TLS_CLIENT_CA)")
    serve.add_argument("--workers", type=int,
                       help="server processes sharing the port (env GRAPHRUN_WORKERS, default 1; needs --port)")
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: `graphrun --help` need not load LangGraph.
    from . import app

    app.serve(app.Settings.from_env(host=args.host, port=args.port, database_url=args.database_url,
                                    config=args.config, data_dir=args.data_dir, workers=args.workers,
                                    tls_cert=args.server_tls_cert, tls_key=args.server_tls_key,
                                    tls_client_ca=args.tls_client_ca))
    return 0
