"""The CloudHSM CLI grammar: every command bound to its flags; bad input is error_code 1."""

from __future__ import annotations

import pytest

from labsupport.client.cli import REGISTRY, CloudHsmCli
from labsupport.client.cli.grammar import UsageError


class _NoClient:
    """Enough of a client for commands that fail in the parser (nothing reaches it)."""

    cluster_id = "cluster-abcdefghijk"


def _cli() -> CloudHsmCli:
    return CloudHsmCli(_NoClient())


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("user list --verbose", "unexpected argument '--verbose'"),
        ("user create --username bob", "--role <ROLE>"),
        ("user create --username bob --role cu", "invalid value 'cu' for '--role <ROLE>'"),
        ("key generate-symmetric aes --label k --key-length-bytes 20", "possible values: 16"),
        ("key generate-symmetric aes --label k --label j --key-length-bytes 16", "multiple"),
        ("key list --max-items lots", "invalid value 'lots'"),
        ("key frobnicate", "unrecognized subcommand 'frobnicate' for 'key'"),
        ("frobnicate", "unrecognized subcommand 'frobnicate'"),
        ("login --username admin --role", "a value is required for '--role <ROLE>'"),
        ("logout now", "unexpected argument 'now'"),
        ('user list "unterminated', "cannot split"),
    ],
)
def test_bad_input_is_error_code_1_not_a_traceback(line: str, needle: str) -> None:
    result = _cli().run(line)
    assert result.error_code == 1
    assert needle in result.data, result.data
    assert '"error_code": 1' in result.to_json()


def test_every_command_takes_cluster_id_and_help() -> None:
    assert len(REGISTRY.commands) >= 40
    for cmd in REGISTRY.commands.values():
        names = {f.name for f in cmd.all_flags()}
        assert {"--cluster-id", "--help"} <= names, cmd.name
        assert cmd.help_text().startswith(cmd.summary)
        assert cmd.handler.__doc__ or cmd.modelled, cmd.name


def test_help_lists_categories_and_commands() -> None:
    cli = _cli()
    top = cli.run("help")
    assert top.ok and top.plain
    for word in ("cluster", "crypto", "key", "login", "logout", "user", "help", "quit"):
        assert f"\n  {word} " in top.data
    assert "generate-symmetric" in cli.run("help key").data
    aes = cli.run("help key generate-symmetric aes").data
    assert "--key-length-bytes <KEY_LENGTH_BYTES>" in aes and "--cluster-id" in aes
    assert cli.run("key list --help").data == cli.run("help key list").data
    assert cli.run("help no-such-thing").error_code == 1


def test_quit_ends_the_session() -> None:
    cli = _cli()
    assert cli.run("quit").ok and cli.finished


def test_parser_binds_lists_switches_and_inline_values() -> None:
    cmd, rest = REGISTRY.find(
        "key generate-symmetric aes --label=k --key-length-bytes 16 --session "
        "--attributes encrypt=true decrypt=true --share-crypto-users alice".split()
    )
    args = cmd.parse(rest)
    assert args.label == "k" and args.session is True
    assert args.attributes == ["encrypt=true", "decrypt=true"]
    assert args.share_crypto_users == ["alice"]
    with pytest.raises(UsageError):
        cmd.parse(["--session=yes", "--label", "k", "--key-length-bytes", "16"])
