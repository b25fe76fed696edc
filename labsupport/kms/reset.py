"""Reset hook of the simulated KMS: forget the keys of a lesson scope, in both its files.

Kept apart from :mod:`labsupport.kms.model` (the records) and
:mod:`labsupport.kms.rotation` (which reads the records), so neither imports the other
both ways: the keys go from ``kms.json`` first, then their rotation state — the order
:func:`labsupport.kms.rotation.drop_orphans` relies on after a crash in between.
"""

from __future__ import annotations

from labsupport.kms import rotation
from labsupport.kms.model import key_owners, state_file
from labsupport.workspace.home import Workspace, belongs_to


def reset_kms(workspace: Workspace, lesson: str | None) -> None:
    """Reset hook: forget every key (``lesson`` None) or the keys of one lesson.

    A key belongs to a lesson scope (``"01"``, ``"01-ex"``) if it was created while
    ``CLOUDHSM_LAB_LESSON`` named that scope, or if it carries the tag
    ``cloudhsm-lab:lesson`` with that value; ``reset("01")`` removes both scopes' keys.
    The scopes' lab-clock offsets are dropped by the clock's own reset
    (:mod:`labsupport.workspace.clock`).
    """
    state = state_file(workspace)
    if lesson is None:
        if state.path.exists():
            state.replace({})
        rotation.forget_all_but(workspace, set())
        return
    if not state.path.exists():
        return
    with state.update() as data:
        keys = data.get("keys", {})
        for key_id, raw in list(keys.items()):
            if any(belongs_to(o, lesson) for o in key_owners(raw)):
                del keys[key_id]
        tokens = data.get("import_tokens", {})
        for token_id, raw in list(tokens.items()):
            if raw["key_id"] not in keys:
                del tokens[token_id]
        kept = set(keys)
    rotation.forget_all_but(workspace, kept)
