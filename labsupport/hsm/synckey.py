"""The cluster sync key: how the HSMs of one lab cluster share key objects.

CloudHSM's HSMs copy keys among themselves with a cluster-wide key AWS does not document.
The lab plays that firmware with one AES-256 key in every HSM token of a cluster, labelled
:data:`SYNC_KEY_LABEL`: a key object is copied by wrapping it under that key
(:data:`SYNC_WRAP`) in one token and unwrapping it in another. Both the client's key sync
(:mod:`labsupport.client.sync`) and the control plane's backups
(:mod:`labsupport.controlplane.backups`) use these definitions, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import pkcs11
from pkcs11 import Attribute, Mechanism, ObjectClass

SYNC_KEY_LABEL = "cloudhsm-lab:cluster-sync-key"
#: How a key object travels between two tokens under the sync key.
SYNC_WRAP = Mechanism.AES_KEY_WRAP_PAD

#: The sync key's own template: a token key that only wraps and unwraps.
SYNC_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: True,  # so it can be handed to the next HSM
    Attribute.WRAP: True,
    Attribute.UNWRAP: True,
    Attribute.ENCRYPT: False,
    Attribute.DECRYPT: False,
    Attribute.SIGN: False,
    Attribute.VERIFY: False,
    Attribute.DERIVE: False,
}


def find_sync_key(session: pkcs11.Session) -> pkcs11.SecretKey | None:
    """The token's sync key, or None if this token has none yet."""
    for obj in session.get_objects(
        {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: SYNC_KEY_LABEL}
    ):
        return obj  # type: ignore[return-value]
    return None


def unwrap_template(object_class: ObjectClass, flags: dict[Attribute, Any]) -> dict[Attribute, Any]:
    """The template that unwraps a synced copy of a secret or private key with ``flags``.

    The HSM-internal copy stays extractable (the next sync wraps it again; the key's own
    CKA_EXTRACTABLE is answered from its record), and a private key leaves out the
    public-key operations SoftHSM refuses in an unwrap template.
    """
    template = dict(flags)
    template[Attribute.EXTRACTABLE] = True
    if object_class == ObjectClass.PRIVATE_KEY:
        for attr in (Attribute.ENCRYPT, Attribute.VERIFY, Attribute.WRAP):
            template[attr] = pkcs11.DEFAULT  # python-pkcs11: leave it out of the template
    return template
