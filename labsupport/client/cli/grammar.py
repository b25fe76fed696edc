"""The CloudHSM CLI grammar: each command bound to its documented flags, one parser.

A command is registered once, with the flags AWS documents for it (``help <command>``
on a real client prints the same list)::

    @command("user delete", "Delete a user", Need.ADMIN,
             Flag("--username", "Username of the user to delete", required=True),
             Flag("--role", "Role of the user", required=True, choices=ROLES))
    def user_delete(cli, args): ...

The parser turns a command line into those flags or raises :class:`UsageError` for an
unknown command or flag, a missing required flag, a repeated flag or a bad value; the
shell answers that with ``{"error_code": 1, "data": "<message>"}`` — never a traceback.
Every command also accepts ``--cluster-id`` (AWS added it to every command for
multi-cluster configurations) and ``-h``/``--help``.

The real CLI is built with clap (Rust); its usage-error texts are not published in the
user guide, so the messages below are *modelled* on clap's style.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class UsageError(Exception):
    """A command line that does not fit the grammar (unknown flag, missing value …)."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage

    def __str__(self) -> str:
        text = f"error: {self.message}"
        if self.usage:
            text += f"\n\nUsage: {self.usage}\n\nFor more information, try '--help'."
        return text


class Kind(enum.Enum):
    """How a flag takes its value."""

    VALUE = "value"  # --label NAME
    SWITCH = "switch"  # --session
    LIST = "list"  # --attributes a=b c=d (space-separated values up to the next flag)


class Need(enum.Enum):
    """Who must be logged in to run a command."""

    NOTHING = "nothing"
    ANY_USER = "any logged-in user"
    ADMIN = "admin"
    CRYPTO_USER = "crypto-user"
    UNACTIVATED_ADMIN = "the unactivated admin (a cluster that is not activated yet)"


@dataclass(frozen=True)
class Flag:
    """One documented flag of a command."""

    name: str
    help: str
    required: bool = False
    kind: Kind = Kind.VALUE
    choices: tuple[str, ...] = ()
    short: str = ""
    convert: Callable[[str], Any] | None = None
    #: When a flag reads a secret (``--password``), ``help`` says so and nothing echoes it.
    secret: bool = False

    @property
    def dest(self) -> str:
        """The Python name of the flag's value (``--key-length-bytes`` → ``key_length_bytes``)."""
        return self.name.lstrip("-").replace("-", "_")

    @property
    def metavar(self) -> str:
        """The value placeholder shown in usage lines (``<KEY_LENGTH_BYTES>``)."""
        return "<" + self.dest.upper() + ">"

    def usage(self) -> str:
        """How the flag appears in a usage line."""
        if self.kind is Kind.SWITCH:
            return self.name
        if self.kind is Kind.LIST:
            return f"{self.name} [{self.metavar}...]"
        return f"{self.name} {self.metavar}"


CLUSTER_ID = Flag(
    "--cluster-id",
    "Unique Id to choose which of the clusters in the config file to run the operation "
    "against. If not provided, will fall back to the value provided when interactive mode "
    "was started, or error",
)
HELP = Flag("--help", "Print help", kind=Kind.SWITCH, short="-h")


class Args(dict):
    """Parsed flag values: ``args.label`` or ``args["label"]``; absent flags are None."""

    def __getattr__(self, name: str) -> Any:
        return self.get(name)


Handler = Callable[[Any, Args], Any]


@dataclass(frozen=True)
class Command:
    """A command: its words, its flags, who may run it, and the function that runs it."""

    path: tuple[str, ...]
    summary: str
    need: Need
    flags: tuple[Flag, ...]
    handler: Handler
    #: Where the lab models behaviour without a public source, a sentence saying so.
    modelled: str = ""
    #: When the lab always refuses the command (SoftHSM cannot do what CloudHSM does):
    #: what CloudHSM would do. The command then answers error_code 1 saying so.
    refused: str = ""

    @property
    def name(self) -> str:
        """``"key generate-symmetric aes"``."""
        return " ".join(self.path)

    def all_flags(self) -> tuple[Flag, ...]:
        """The documented flags plus ``--cluster-id`` and ``--help``."""
        return (CLUSTER_ID, *self.flags, HELP)

    def usage(self) -> str:
        """The one-line usage, as ``help`` prints it."""
        required = " ".join(f.usage() for f in self.flags if f.required)
        return f"{self.name} [OPTIONS] {required}".rstrip()

    def help_text(self) -> str:
        """The text of ``help <command>``."""
        lines = [self.summary, "", f"Usage: {self.usage()}", "", "Options:"]
        for flag in self.all_flags():
            names = f"{flag.short}, {flag.usage()}" if flag.short else f"    {flag.usage()}"
            lines.append(f"  {names}")
            text = flag.help
            if flag.choices:
                text += f" [possible values: {', '.join(flag.choices)}]"
            lines.append(f"          {text}")
        if self.modelled:
            lines += ["", f"(lab: {self.modelled})"]
        if self.refused:
            lines += ["", f"(lab: always refused: {self.refused})"]
        return "\n".join(lines)

    def parse(self, words: list[str]) -> Args:
        """Bind ``words`` (what follows the command's name) to its flags."""
        flags = {f.name: f for f in self.all_flags()}
        flags.update({f.short: f for f in self.all_flags() if f.short})
        args = Args()
        seen: set[str] = set()
        i = 0
        while i < len(words):
            word = words[i]
            i += 1
            inline = None
            if word.startswith("--") and "=" in word:
                word, inline = word.split("=", 1)
            flag = flags.get(word)
            if flag is None:
                raise UsageError(f"unexpected argument '{word}' found", self.usage())
            if flag.name in seen:
                raise UsageError(
                    f"the argument '{flag.usage()}' cannot be used multiple times", self.usage()
                )
            seen.add(flag.name)
            if flag.kind is Kind.SWITCH:
                if inline is not None:
                    raise UsageError(
                        f"unexpected value '{inline}' for '{flag.name}' found; no more were "
                        "expected",
                        self.usage(),
                    )
                args[flag.dest] = True
                continue
            values = [] if inline is None else [inline]
            if flag.kind is Kind.LIST:
                while i < len(words) and not _is_flag(words[i], flags):
                    values.append(words[i])
                    i += 1
                args[flag.dest] = [self._value(flag, v) for v in values]
                continue
            if inline is None:
                if i >= len(words) or _is_flag(words[i], flags):
                    raise UsageError(
                        f"a value is required for '{flag.usage()}' but none was supplied",
                        self.usage(),
                    )
                values = [words[i]]
                i += 1
            args[flag.dest] = self._value(flag, values[0])
        if args.get("help"):
            return args
        missing = [f for f in self.flags if f.required and f.dest not in args]
        if missing:
            listed = "\n".join(f"  {f.usage()}" for f in missing)
            raise UsageError(
                f"the following required arguments were not provided:\n{listed}", self.usage()
            )
        return args

    def _value(self, flag: Flag, text: str) -> Any:
        if flag.choices and text not in flag.choices:
            raise UsageError(
                f"invalid value '{text}' for '{flag.usage()}'\n  [possible values: "
                f"{', '.join(flag.choices)}]",
                self.usage(),
            )
        if flag.convert is not None:
            try:
                return flag.convert(text)
            except (ValueError, TypeError) as exc:
                raise UsageError(
                    f"invalid value '{text}' for '{flag.usage()}': {exc}", self.usage()
                ) from None
        return text


def _is_flag(word: str, flags: dict[str, Flag]) -> bool:
    return word.startswith("--") or word in flags


@dataclass
class Registry:
    """Every command the CLI knows, by its words."""

    commands: dict[tuple[str, ...], Command] = field(default_factory=dict)
    #: One-line descriptions of categories (``key``, ``key wrap`` …) for ``help``.
    categories: dict[tuple[str, ...], str] = field(default_factory=dict)

    def add(self, cmd: Command) -> None:
        """Register ``cmd`` (a second registration of the same words is a programming error)."""
        if cmd.path in self.commands:
            raise ValueError(f"command {cmd.name!r} is registered twice")
        self.commands[cmd.path] = cmd

    def category(self, words: str, summary: str) -> None:
        """Describe a category such as ``"key wrap"`` for ``help``."""
        self.categories[tuple(words.split())] = summary

    def find(self, words: list[str]) -> tuple[Command, list[str]]:
        """The command named by the first words, and the rest of the line."""
        for n in range(min(len(words), 4), 0, -1):
            cmd = self.commands.get(tuple(words[:n]))
            if cmd is not None:
                return cmd, words[n:]
        prefix: list[str] = []
        for word in words:
            if not self.children(tuple([*prefix, word])):
                break
            prefix.append(word)
        if prefix:
            wanted = words[len(prefix)] if len(words) > len(prefix) else ""
            choices = ", ".join(self.children(tuple(prefix)))
            what = f"unrecognized subcommand '{wanted}'" if wanted else "a subcommand is required"
            raise UsageError(
                f"{what} for '{' '.join(prefix)}'\n  [possible subcommands: {choices}]",
                f"{' '.join(prefix)} <COMMAND>",
            )
        raise UsageError(
            f"unrecognized subcommand '{words[0]}'\n  [possible commands: "
            f"{', '.join(self.children(()))}]",
            "<COMMAND>",
        )

    def children(self, prefix: tuple[str, ...]) -> list[str]:
        """The words that may follow ``prefix`` (sorted)."""
        n = len(prefix)
        return sorted({p[n] for p in self.commands if len(p) > n and p[:n] == prefix})

    def help_text(self, words: list[str]) -> str:
        """``help`` (every category) or ``help <category|command>``."""
        if words:
            cmd = self.commands.get(tuple(words))
            if cmd is not None:
                return cmd.help_text()
            if not self.children(tuple(words)):
                raise UsageError(
                    f"unrecognized subcommand '{' '.join(words)}'", "help [COMMAND]..."
                )
        prefix = tuple(words)
        title = self.categories.get(prefix, "CloudHSM CLI")
        lines = [title, "", f"Usage: {' '.join(prefix) or 'cloudhsm-cli'} <COMMAND>", ""]
        lines.append("Commands:")
        for child in self.children(prefix):
            path = (*prefix, child)
            cmd = self.commands.get(path)
            summary = cmd.summary if cmd else self.categories.get(path, "")
            lines.append(f"  {child:<26}{summary}")
        if not prefix:
            lines.append(f"  {'help':<26}Print this message or the help of the given subcommand(s)")
            lines.append(f"  {'quit':<26}Quit the CloudHSM CLI")
        return "\n".join(lines)


#: The one registry the shell uses; families add their commands to it when imported.
REGISTRY = Registry()


def command(
    words: str, summary: str, need: Need, *flags: Flag, modelled: str = "", refused: str = ""
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of command ``words``.

    ``modelled``: what the lab models without a public source; ``refused``: what CloudHSM
    does that the lab cannot (the handler then always answers error_code 1).
    """

    def register(handler: Handler) -> Handler:
        REGISTRY.add(
            Command(tuple(words.split()), summary, need, tuple(flags), handler, modelled, refused)
        )
        return handler

    return register


def positive_int(text: str) -> int:
    """A flag value that must be a whole number ≥ 0."""
    value = int(text, 0)
    if value < 0:
        raise ValueError("must not be negative")
    return value


__all__ = [
    "CLUSTER_ID",
    "REGISTRY",
    "Args",
    "Command",
    "Flag",
    "Kind",
    "Need",
    "Registry",
    "UsageError",
    "command",
    "positive_int",
]
