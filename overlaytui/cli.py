"""The `overlaytui` command line.

Start-up costs argparse and little else: the top-level parser (the dashboard's flags and the list of commands) is
built from overlaytui.flags and overlaytui.commands.common/dashboard, which import no engine client, model, UI or
exporter; a command's module is imported, and its parser built, only when the command is named. `--version` and
`--help` stay in a blink (tests/unit/test_cli.py walks `python -X importtime` to keep it so).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import os
import re
import sys
import threading
import types
from collections.abc import Sequence

from . import __version__
from .commands import dashboard
from .safe import PrintableStream

COMMANDS = {  # name: (the module whose add_parser builds it, its line in `overlaytui --help`), in --help's order
    "snapshot": ("overlaytui.commands.snapshot", "print one snapshot of the cluster (JSON or a readable summary)"),
    "probe": ("overlaytui.commands.probe",
              "measure loss, latency, path MTU (and throughput) between every pair of nodes"),
    "doctor": ("overlaytui.commands.doctor",
               "find what is wrong with the swarm's overlays, with the evidence and the fix"),
    "exporter": ("overlaytui.commands.exporter",
                 "serve loss, RTT, path MTU and the doctor's findings as Prometheus metrics"),
    "record": ("overlaytui.commands.record", "record the cluster's frames to a file, for --replay"),
    "serve": ("overlaytui.commands.serve",
              "the dashboard in a browser: one producer, every browser tab a viewer of its frames"),
    "lab": ("overlaytui.lab.cli", "build a real multi-node swarm on this machine (root)"),
}
# Dashboard flags that some commands spell the same but mean otherwise: given before such a command, refused
# (the dashboard's --interval is its refresh; snapshot's is between two stats samples, probe's between pings;
# serve's, the dashboard's own flags, is the same).
NOT_THE_SAME = {"interval"}

_GIVEN = "_overlaytui_given"  # on the namespace while parsing: the top-level flags given, dest -> option string
_FROM_THE_END = re.compile(r"-(?:\d+(?:\.\d+)?[hms]?)+")  # --at -30s, -1h30m, -90: a value, not an option


class Parser(argparse.ArgumentParser):
    """argparse, where a value such as `-30s` (an offset from a recording's end) is a value, not an option, and
    which keeps the flags its last parse was given (`given`: dest -> option string)."""

    given: dict[str, str] = {}

    def _parse_optional(self, arg_string):
        if _FROM_THE_END.fullmatch(arg_string):
            return None
        return super()._parse_optional(arg_string)

    def parse_known_args(self, args=None, namespace=None):
        if args is None:
            args = sys.argv[1:]
        args = self._commands_after_optional_values(list(args))
        namespace, extras = super().parse_known_args(args, namespace)
        self.given = vars(namespace).pop(_GIVEN, {})
        return namespace, extras

    def _commands_after_optional_values(self, args: list[str]) -> list[str]:
        """`overlaytui --demo doctor`: a flag whose value is optional (--demo [SCENARIO]) takes its default when
        the word after it is a command, not a value it accepts (argparse would take the command for the value)."""
        commands = next((a for a in self._actions if isinstance(a, Commands)), None)
        if commands is None:
            return args
        for i, word in enumerate(args[:-1]):
            if word in commands.choices:
                break
            action = self._option_string_actions.get(word)
            following = args[i + 1]
            if action is not None and action.nargs == "?" and following in commands.choices \
                    and following not in (action.choices or ()):
                args[i] = f"{word}={action.const}"
        return args


class Commands(argparse._SubParsersAction):
    """The commands: each listed (with its line) at once, built (its module imported) only when named. A top-level
    flag given before a command is handed to the command when it takes the same flag, else refused in one line."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._modules: dict[str, str] = {}
        self.declared_help: dict[str, str | None] = {}  # the line each module's add_parser gives (a test compares)

    def add_lazy(self, name: str, module: str, help: str) -> None:
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._name_parser_map[name] = None  # a name argparse accepts; its parser is built when it is named
        self._modules[name] = module

    def build(self, name: str) -> argparse.ArgumentParser:
        module = self._modules.pop(name, None)
        if module is not None:
            defer_import("paramiko")
            # the import statement's way in (importlib's bypasses -X importtime, which the start-up bench reads)
            __import__(module, fromlist=["add_parser"]).add_parser(_Builder(self))
            _note_given(self._name_parser_map[name])
        return self._name_parser_map[name]

    def build_all(self) -> None:
        for name in list(self._modules):
            self.build(name)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        name = values[0]
        if name in self._modules:
            self.build(name)
        given = vars(namespace).pop(_GIVEN, {})
        before = {dest: getattr(namespace, dest) for dest in given}
        super().__call__(parser, namespace, values, option_string)
        command = self._name_parser_map[name]
        takes = {a.dest: a for a in command._actions if a.option_strings}
        for dest, option in given.items():
            action = takes.get(dest)
            other = dest in NOT_THE_SAME and action is not None \
                and action.help != parser._option_string_actions[option].help
            if action is None or option not in action.option_strings or other:
                parser.exit(2, f"overlaytui: {option} before `{name}` is the dashboard's; `{name}` has its own "
                            f"{option}: give it after `{name}`\n" if action is not None else
                            f"overlaytui: {option} is the dashboard's; `overlaytui {name}` does not take it\n")
            now = getattr(namespace, dest, None)
            if isinstance(action, argparse._AppendAction):  # -H before and after the command: every one of them
                setattr(namespace, dest, [*(before[dest] or []), *(now or [])])
            elif dest not in getattr(command, "given", {}):  # not given after the command: the one before counts
                setattr(namespace, dest, before[dest])


class _Builder:
    """What a command module's add_parser(subparsers) is handed when its command is built: it makes the parser as
    argparse's add_parser does, in the place already listed for it (the listed line is the one --help shows)."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        self.commands.declared_help[name] = kwargs.pop("help", None)
        if kwargs.get("prog") is None:
            kwargs["prog"] = f"{self.commands._prog_prefix} {name}"
        parser = self.commands._parser_class(**kwargs)
        self.commands._name_parser_map[name] = parser
        return parser


@functools.cache
def _noting(cls: type[argparse.Action]) -> type[argparse.Action]:
    """`cls`, noting on the namespace that its flag was given (for Commands to hand it over or refuse it)."""
    def __call__(self, parser, namespace, values, option_string=None):
        vars(namespace).setdefault(_GIVEN, {}).setdefault(self.dest, option_string)
        cls.__call__(self, parser, namespace, values, option_string)
    return type(cls.__name__, (cls,), {"__call__": __call__})


def _note_given(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            action.__class__ = _noting(type(action))


def build_parser(every_command: bool = False) -> argparse.ArgumentParser:
    """The command line; each command's parser is built when it is named (every_command: all of them now)."""
    parser = Parser(
        prog="overlaytui",
        description="Make Docker Swarm overlay networks visible and testable at a glance. Without a command: "
        "the dashboard (on the engines chosen as the docker CLI chooses them, or --demo).",
    )
    parser.add_argument("--version", action="version", version=f"overlaytui {__version__}")
    dashboard.add_flags(parser)
    _note_given(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", action=Commands)
    for name, (module, line) in COMMANDS.items():
        commands.add_lazy(name, module, line)
    if every_command:
        commands.build_all()
    return parser


class _Deferred(types.ModuleType):
    """A module's stand-in until one of its names is used: then the module is imported and answers (the import
    statement reads only __spec__, which a stand-in has)."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer_import(name: str) -> None:
    """Import `name` when one of its names is first used, not when it is imported: docker-py's ssh transport
    imports paramiko (with cryptography, nacl, bcrypt: 0.1-0.4 s here) as docker is imported, though the
    transport we use runs the ssh client instead (use_ssh_client) and never touches it."""
    import importlib.util

    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _Deferred(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defer_import("paramiko")
    handler = getattr(args, "handler", dashboard.main)
    if handler is not dashboard.main:  # the dashboard's terminal belongs to Textual, which gets safe text only
        sys.stdout, sys.stderr = PrintableStream(sys.stdout), PrintableStream(sys.stderr)
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("overlaytui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `overlaytui probe --watch | head`: the reader left (cleanup ran on the way out)
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno())
        return 141


def run() -> None:
    """The console script: `main`, then an exit that never waits for a thread stuck in an engine call (docker-py's
    timeout is per read: an engine that sends a byte every few seconds holds a thread for as long as it likes,
    and Python joins every worker thread at exit)."""
    code = main()
    exit_now(code)


def exit_now(code: int) -> None:
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if not stuck:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    from .sources import ssh

    ssh.remove()  # os._exit skips atexit: the ssh wrapper's directory goes here
    os._exit(code)


if __name__ == "__main__":
    run()
