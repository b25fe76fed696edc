"""Where the workspace lives and what is inside it.

Layout (all under one directory, mode 0700)::

    ~/.cloudhsm-lab/            (or $CLOUDHSM_LAB_HOME)
      softhsm2.conf             SoftHSM configuration pointing at tokens/
      tokens/                   one SoftHSM token directory per simulated HSM
      state/*.json              control-plane, client, KMS and token state
      lessons/NN/               files a lesson writes (PKI material, customerCA.crt …)
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from labsupport.errors import WorkspaceError
from labsupport.workspace.statefile import StateFile, Validator

ENV_HOME = "CLOUDHSM_LAB_HOME"
#: Names the lesson scope running in this process (set by ``start_lesson``); resources
#: created while it is set belong to that scope.
ENV_LESSON = "CLOUDHSM_LAB_LESSON"
#: AWS resource tag naming the lesson scope a cluster or KMS key belongs to.
LESSON_TAG = "cloudhsm-lab:lesson"
#: Owner of resources created outside any lesson.
WORKSPACE_OWNER = "workspace"

SOFTHSM_CONF_TEMPLATE = """\
# Written by labsupport: SoftHSMv2 configuration for this CloudHSM Lab workspace.
directories.tokendir = {tokendir}
objectstore.backend = file
log.level = ERROR
slots.removable = false
"""


def belongs_to(owner: str, lesson: str | None) -> bool:
    """True if a resource created by ``owner`` is reset by ``reset(lesson)``.

    Owners are lesson scopes: ``"02-lesson"`` (the guided lesson) or ``"02-ex"`` (its
    exercise). ``reset("02")`` resets both, ``reset("02-ex")`` only that scope, and
    ``reset(None)`` everything.
    """
    if lesson is None or owner == lesson:
        return True
    return "-" not in lesson and owner.startswith(lesson + "-")


def current_scope() -> str:
    """The owner scope for a resource created now: ``$CLOUDHSM_LAB_LESSON`` or ``"workspace"``."""
    return os.environ.get(ENV_LESSON) or WORKSPACE_OWNER


def default_home() -> Path:
    """The workspace directory: ``$CLOUDHSM_LAB_HOME`` or ``~/.cloudhsm-lab``."""
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser() if env else Path.home() / ".cloudhsm-lab"


@dataclass(frozen=True)
class Workspace:
    """A learner's lab directory. ``Workspace.open()`` creates it if needed."""

    root: Path

    @classmethod
    def open(cls, root: Path | str | None = None) -> Workspace:
        """Open (creating if missing) the workspace at ``root`` or the default location."""
        ws = cls(Path(root).expanduser() if root else default_home())
        ws.ensure()
        return ws

    # -- paths ---------------------------------------------------------------------

    @property
    def softhsm_conf(self) -> Path:
        """The SoftHSM configuration file (export it as ``SOFTHSM2_CONF``)."""
        return self.root / "softhsm2.conf"

    @property
    def token_dir(self) -> Path:
        """Directory holding the SoftHSM token directories."""
        return self.root / "tokens"

    @property
    def state_dir(self) -> Path:
        """Directory holding the JSON state files."""
        return self.root / "state"

    def lesson_dir(self, lesson: str) -> Path:
        """Directory for files lesson ``lesson`` writes (created on demand)."""
        path = self.root / "lessons" / lesson
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def state(
        self, name: str, default: dict | None = None, validate: Validator | None = None
    ) -> StateFile:
        """The state file ``state/<name>.json`` (``validate`` checks its shape on load)."""
        return StateFile(self.state_dir / f"{name}.json", default, validate)

    # -- lifecycle -------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the directory tree and the SoftHSM config; check it is safe and writable.

        A workspace the lab creates is made mode 0700. An existing directory keeps its
        mode (the lab never chmods what it did not create — ``CLOUDHSM_LAB_HOME=/tmp``
        must not strip ``/tmp``'s sticky bit); one that other users could write into is
        refused unless it is sticky (then nobody else can replace the lab's entries),
        and the lab's own folders inside it must belong to the current user.
        """
        try:
            if not self.root.is_dir():
                self.root.parent.mkdir(parents=True, exist_ok=True)
                self.root.mkdir(mode=0o700, exist_ok=True)
            self._check_safe(self.root, top=True)
            for d in (self.token_dir, self.state_dir):
                d.mkdir(exist_ok=True, mode=0o700)
                self._check_safe(d, top=False)
            conf = SOFTHSM_CONF_TEMPLATE.format(tokendir=self.token_dir)
            if not self.softhsm_conf.exists() or self.softhsm_conf.read_text() != conf:
                self.softhsm_conf.write_text(conf)
            probe = self.state_dir / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except PermissionError as exc:
            raise WorkspaceError(
                f"The lab workspace {self.root} is not writable ({exc.strerror}).",
                f"Fix its permissions (chmod u+rwx {self.root}) or set {ENV_HOME} to a "
                "directory you own, then restart the kernel.",
            ) from exc
        except OSError as exc:
            raise WorkspaceError(
                f"Cannot create the lab workspace {self.root}: {exc.strerror}.",
                f"Set {ENV_HOME} to a writable directory with free space, then restart the kernel.",
            ) from exc

    def _check_safe(self, path: Path, top: bool) -> None:
        """Refuse a directory other users could tamper with (see :meth:`ensure`)."""
        st = path.stat()
        mine = st.st_uid == os.geteuid()
        shared_write = bool(st.st_mode & 0o022)
        sticky = bool(st.st_mode & stat.S_ISVTX)
        if top and shared_write and not sticky:
            raise WorkspaceError(
                f"The lab workspace {path} is writable by other users "
                f"(mode {stat.S_IMODE(st.st_mode):o}), so they could replace its tokens and "
                "state files. The lab does not change permissions of a directory it did not "
                "create.",
                f"Run `chmod go-w {path}` if it is yours, or set {ENV_HOME} to a new path "
                f"(e.g. {ENV_HOME}={path / 'cloudhsm-lab'}) — the lab creates it private (0700).",
            )
        if not top and (not mine or shared_write):
            raise WorkspaceError(
                f"{path} inside the lab workspace belongs to another user or is writable by "
                "others; the lab will not keep tokens or state there.",
                f"Set {ENV_HOME} to a new directory you own "
                f"(e.g. {ENV_HOME}=~/.cloudhsm-lab), then restart the kernel.",
            )

    def remove_lesson_files(self, lesson: str | None = None) -> None:
        """Remove the files of one lesson scope, or every token, state and lesson file.

        The last step of :func:`labsupport.simulators.reset`, which first lets every
        layer clean up its part (tokens, clusters, keys).
        """
        if lesson is None:
            for d in (self.token_dir, self.state_dir, self.root / "lessons"):
                shutil.rmtree(d, ignore_errors=True)
            self.ensure()
        else:
            for folder in (self.root / "lessons").glob(f"{lesson}*"):
                if belongs_to(folder.name, lesson):
                    shutil.rmtree(folder, ignore_errors=True)
