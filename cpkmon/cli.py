"""The ``cpkmon`` command line (SPEC §8). Each command lives in :mod:`cpkmon.commands`."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="cpkmon",
    help="Streaming process capability on Kafka: Cpk, control charts, yield and the MIIT quality ladder.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """cpkmon: Kafka-native process capability, control charts, yield and the MIIT quality ladder."""


# (module, function, command name): a command whose module is missing is simply not offered.
_COMMANDS = [
    ("cpkmon.commands.capability", "capability", "capability"),
    ("cpkmon.commands.broker", "broker", "broker"),
    ("cpkmon.commands.worker", "worker", "worker"),
    ("cpkmon.commands.api", "api", "api"),
    ("cpkmon.commands.up", "up", "up"),
    ("cpkmon.commands.simulate", "simulate", "simulate"),
    ("cpkmon.commands.replay", "replay", "replay"),
    ("cpkmon.commands.schema", "schema", "schema"),
    ("cpkmon.commands.notify", "notify", "notify"),
    ("cpkmon.commands.audit", "app", "audit"),  # a group: `cpkmon audit verify`
]

for module_name, func_name, command_name in _COMMANDS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        continue
    target = getattr(module, func_name)
    if isinstance(target, typer.Typer):  # a command group (its sub-commands are its own)
        app.add_typer(target, name=command_name)
    else:
        app.command(command_name)(target)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
