"""The CloudHSM CLI session: who is logged in, how a command line is run, how errors look.

One :class:`CloudHsmCli` is one ``cloudhsm-cli interactive`` process (or one notebook
kernel's ``%cloudhsm_cli``): it remembers the logged-in user between commands. Every
command line goes through :meth:`CloudHsmCli.run`, which never raises for bad input — a
bad flag, a refused operation or a PKCS#11 error all come back as
``{"error_code": 1, "data": "<message>"}`` with a lab hint.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import pkcs11

from labsupport.client.cli import families
from labsupport.client.cli.grammar import REGISTRY, Args, Need, UsageError
from labsupport.client.cli.result import CliResult
from labsupport.client.errors import ClusterNotActive, NotAuthorized
from labsupport.client.users import Role, User
from labsupport.errors import LabError
from labsupport.explanations import Explanation, Source, lookup

families.load()

#: Asks for a secret: called with the prompt (``"Enter password:"``), returns the answer.
PasswordPrompt = Callable[[str], str]


class CloudHsmCli:
    """A CloudHSM CLI session on one cluster (``client.cli`` or the ``cloudhsm-cli`` command).

    ``run("user list")`` runs one command line and returns a :class:`CliResult`. Commands
    that take a password read ``--password``, else ``run(..., password=...)``, else ask
    ``prompt`` (``Enter password:``) — the console script prompts on the terminal.
    """

    def __init__(self, client: Any, prompt: PasswordPrompt | None = None) -> None:
        self.client = client
        self.prompt = prompt
        self.user: User | None = None
        self._session: Any = None
        self._given_password: list[str] = []
        #: Set by ``quit``; the interactive loop stops.
        self.finished = False

    def __repr__(self) -> str:
        who = f"{self.user.username} ({self.user.role.value})" if self.user else "not logged in"
        return f"<CloudHsmCli {self.client.cluster_id}: {who}>"

    # -- running command lines -----------------------------------------------------------

    def run(self, command: str, password: str | None = None) -> CliResult:
        """Run one command line, e.g. ``"user list"``; returns its :class:`CliResult`.

        ``password`` answers the command's password prompt(s) so a notebook never shows
        it. Bad input gives ``error_code`` 1 with a message — never a traceback.
        """
        try:
            words = shlex.split(command, comments=True)
        except ValueError as exc:
            return CliResult(1, f"error: cannot split the command line: {exc}", _HELP_HINT)
        return self.run_words(words, password)

    def run_words(self, words: list[str], password: str | None = None) -> CliResult:
        """Run a command given as words (what a shell passes to ``cloudhsm-cli``)."""
        if not words:
            return CliResult(0, "", plain=True)
        self._given_password = [password, password] if password is not None else []
        try:
            if words[0] == "quit":
                self.finished = True
                return CliResult(0, "", plain=True)
            if words[0] == "help" or words[-1] in ("--help", "-h"):
                topic = words[1:] if words[0] == "help" else words[:-1]
                return CliResult(0, REGISTRY.help_text(topic), plain=True)
            cmd, rest = REGISTRY.find(words)
            args = cmd.parse(rest)
            self._check_cluster(args)
            self._check_login(cmd.need)
            data = cmd.handler(self, args)
            return data if isinstance(data, CliResult) else CliResult(0, data)
        except UsageError as exc:
            return CliResult(1, str(exc), _HELP_HINT)
        except LabError as exc:
            return CliResult(1, exc.problem, exc.fix)
        except pkcs11.PKCS11Error as exc:
            return CliResult(1, _pkcs11_message(exc), _pkcs11_hint(exc))
        except OSError as exc:  # a file flag (--path, --token, --data-path …) the CLI cannot use
            where = f": {exc.filename}" if exc.filename else ""
            return CliResult(
                1, f"{exc.strerror or exc}{where}", "Check the path (its folder must exist)."
            )
        finally:
            self._given_password = []

    # -- what commands use ------------------------------------------------------------------

    def password(self, args: Args, confirm: bool = False) -> str:
        """The password of a command: ``--password``, ``run(password=)``, else the prompt(s)."""
        if args.password is not None:
            return str(args.password)
        first = self._ask("Enter password:")
        if confirm:
            second = self._ask("Confirm password:")
            if second != first:
                raise LabError(
                    "Passwords do not match.",  # modelled: the real text is not published
                    "Type the same password at both prompts.",
                )
        return first

    def _ask(self, prompt: str) -> str:
        if self._given_password:
            return self._given_password.pop(0)
        if self.prompt is None:
            raise LabError(
                "This command needs a password and there is no terminal to type it in.",
                "Add --password $variable (IPython expands it, so the value is not shown), or "
                "call cli.run(..., password=...).",
            )
        return self.prompt(prompt)

    @property
    def session(self) -> Any:
        """The logged-in crypto user's PKCS#11 session on the cluster."""
        self._check_login(Need.CRYPTO_USER)
        return self._session

    def log_in(self, username: str, role: Role, password: str) -> User:
        """Check the password (counting failures) and keep the user logged in."""
        if self.user is not None:
            raise LabError(
                f"User {self.user.username} is already logged in.",  # modelled text
                "Run `logout` first.",
            )
        user = self.client.users.authenticate(username, password, role)
        if user.role is Role.CRYPTO_USER:
            self._session = self.client.login(f"{username}:{password}", rw=True)
        self.user = user
        return user

    def log_out(self) -> None:
        """End the login (closes the crypto user's session; session keys disappear)."""
        if self._session is not None:
            self._session.close()
            self._session = None
        if self.user is not None:  # quorum tokens end with the login (AWS)
            from labsupport.client.quorum import Quorum

            Quorum(self.client.store).delete_tokens(self.user.username)
        self.user = None

    def close(self) -> None:
        """Log out; the client stays open for its owner."""
        self.log_out()

    # -- checks ---------------------------------------------------------------------------

    def _check_cluster(self, args: Args) -> None:
        wanted = args.cluster_id
        if wanted and wanted != self.client.cluster_id:
            raise LabError(
                f"Cluster {wanted} is not in the client's configuration (it is configured for "
                f"{self.client.cluster_id}).",
                f"Run configure-cli --cluster-id {wanted} (or -a <ENI IP>) first; the lab's "
                "client holds one cluster at a time.",
            )

    def _check_login(self, need: Need) -> None:
        if need is Need.NOTHING:
            return
        if need is Need.UNACTIVATED_ADMIN:
            return
        if not self.client.users.activated:
            raise ClusterNotActive(
                "The cluster is not activated yet, so nobody can log in.",
                "Run `cluster activate` to set the admin password first.",
            )
        if self.user is None:
            role = "admin" if need is Need.ADMIN else "crypto-user"
            who = "user" if need is Need.ANY_USER else need.value
            raise NotAuthorized(
                f"This command needs a logged-in {who}.",  # modelled text
                f"Log in first: login --username <name> --role {role}.",
            )
        if need is Need.ADMIN and self.user.role is not Role.ADMIN:
            raise NotAuthorized(
                f"This command is for admins; {self.user.username} is a {self.user.role.value}.",
                "Log out and log in as an admin (login --username admin --role admin).",
            )
        if need is Need.CRYPTO_USER and self.user.role is not Role.CRYPTO_USER:
            raise NotAuthorized(
                f"Key commands are for crypto users; {self.user.username} is an "
                f"{self.user.role.value} (admins manage users, not keys).",
                "Log out and log in as a crypto user: login --username <cu> --role crypto-user.",
            )


_HELP_HINT = "Run `help` for the commands, `help <command>` for a command's flags."


def _explanation(exc: pkcs11.PKCS11Error) -> Explanation | None:
    for cls in type(exc).__mro__:
        found = lookup(cls.__name__, Source.PKCS11)
        if found is not None:
            return found
    return None


def _pkcs11_message(exc: pkcs11.PKCS11Error) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    found = _explanation(exc)
    head = f"{name} ({found.ckr})" if found and found.ckr else name
    return f"{head}: {text}" if text and text != name else head


def _pkcs11_hint(exc: pkcs11.PKCS11Error) -> str:
    found = _explanation(exc)
    return f"{found.meaning} {found.fix}" if found else ""


__all__ = ["CloudHsmCli", "PasswordPrompt"]
