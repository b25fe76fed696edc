"""Layer 5 — a simulated AWS KMS, reached through a real ``boto3`` client.

    from labsupport import aws
    kms = aws.client("kms")
    key_id = kms.create_key(Description="lesson 01")["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")

Keys are symmetric (AES-256-GCM), created by KMS (``Origin="AWS_KMS"``) or waiting for
your own material (``Origin="EXTERNAL"``: GetParametersForImport → wrap → ImportKeyMaterial).
They belong to the fake account :data:`ACCOUNT_ID` (``111122223333``) and live in the
workspace (``state/kms.json``), so a key made in one notebook is there in the next.
:func:`advance_clock` moves the lab clock (:mod:`labsupport.workspace.clock`) of this
lesson scope forward to watch import tokens and imported key material expire. See
:mod:`labsupport.kms.service` for what is simulated and where the simulation differs
from AWS.
"""

from labsupport.kms.model import (
    ACCOUNT_ID,
    ExpirationModel,
    KeyState,
    Origin,
    WrappingAlgorithm,
    WrappingKeySpec,
    key_arn,
)
from labsupport.kms.service import KmsService
from labsupport.kms.wrapping import unwrap_key_material, wrap_key_material
from labsupport.workspace.clock import advance_clock, now, reset_clock
from labsupport.workspace.home import ENV_LESSON, LESSON_TAG

__all__ = [
    "ACCOUNT_ID",
    "ENV_LESSON",
    "LESSON_TAG",
    "ExpirationModel",
    "KeyState",
    "KmsService",
    "Origin",
    "WrappingAlgorithm",
    "WrappingKeySpec",
    "advance_clock",
    "key_arn",
    "now",
    "reset_clock",
    "unwrap_key_material",
    "wrap_key_material",
]
