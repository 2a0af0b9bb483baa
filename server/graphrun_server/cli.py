"""`graphrun serve`: the server's part of the `graphrun` command.

The command line belongs to the client distribution (graphrun-client), which must install
without the server's dependencies; it finds this command through the `graphrun.commands`
entry point the server distribution declares, and says how to install the server when it
is absent. Its options are the settings declared in settings.py, one per setting.
"""

from __future__ import annotations

import argparse

from . import settings as declared


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """Add `serve` to the `graphrun` command's subcommands."""
    serve = commands.add_parser(
        "serve",
        help="run a graphrun server",
        description="Run a graphrun server. Every setting is an option here and an environment variable; "
        "an option wins over its variable.",
    )
    declared.add_options(serve)
    serve.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported here: `graphrun --help` need not load LangGraph.
    from . import app

    given = {setting.dest: getattr(args, setting.dest, None) for setting in declared.SETTINGS}
    declared.apply_environment_only(given)
    settings = app.Settings.from_env(given)
    if args.print_config:
        declared.print_config(settings)
        return 0
    app.serve(settings)
    return 0
