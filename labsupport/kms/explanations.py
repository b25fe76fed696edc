"""Plain-language explanations of KMS errors, shown under a traceback in the notebooks."""

from __future__ import annotations

from labsupport.pedagogy.explain import register_explanation

_KMS_ERRORS = [
    (
        "NotFoundException",
        "No KMS key (or alias) with that id exists in this account and region "
        "— or it was deleted after its waiting period.",
        "Check the key id/ARN and the region; kms.list_keys() lists your keys.",
    ),
    (
        "DisabledException",
        "The key exists but is disabled, so it may not encrypt or decrypt.",
        "Enable it with kms.enable_key(KeyId=...) if that is intended.",
    ),
    (
        "KMSInvalidStateException",
        "The key's state does not allow this operation (for example "
        "PendingImport: no key material yet or it expired; PendingDeletion: being deleted).",
        "kms.describe_key(KeyId=...)['KeyMetadata']['KeyState'] tells you which; import the key "
        "material again, or cancel the deletion.",
    ),
    (
        "InvalidCiphertextException",
        "KMS could not decrypt: the ciphertext was altered, is not a "
        "KMS ciphertext, or the encryption context differs from the one used to encrypt (on "
        "ImportKeyMaterial: the key material was not wrapped with this import's public key and "
        "algorithm).",
        "Pass the exact same EncryptionContext as for Encrypt/GenerateDataKey; for an "
        "import, wrap with the PublicKey and WrappingAlgorithm of the same GetParametersForImport.",
    ),
    (
        "IncorrectKeyException",
        "The ciphertext was made under a different KMS key than the KeyId you passed.",
        "Pass the key that encrypted it, or leave KeyId out (symmetric blobs name their key).",
    ),
    (
        "IncorrectKeyMaterialException",
        "A KMS key with imported material only ever accepts that "
        "same material again (or the material has the wrong size).",
        "Reimport the original key material — keep a copy of it, for instance in your own HSM.",
    ),
    (
        "ExpiredImportTokenException",
        "The import token and its wrapping public key are valid for "
        "24 hours, and these have expired.",
        "Call get_parameters_for_import again and wrap the key material with the new public key.",
    ),
    (
        "InvalidImportTokenException",
        "The import token is damaged or belongs to another KMS key.",
        "Use the ImportToken from the same get_parameters_for_import response as the public key.",
    ),
    (
        "UnsupportedOperationException",
        "This operation or parameter is not supported here (for "
        "example RSAES_PKCS1_V1_5 wrapping, or importing into a key whose origin is AWS_KMS).",
        "Read the message: it names the option to use instead.",
    ),
    (
        "InvalidKeyUsageException",
        "The key cannot be used this way (for example an RSA encryption "
        "algorithm with a symmetric key).",
        "Use EncryptionAlgorithm='SYMMETRIC_DEFAULT' (or omit it).",
    ),
    (
        "ValidationException",
        "AWS rejected a parameter value before doing anything (too long, out of range, missing "
        "a required combination). KMS's Encrypt, for instance, takes at most 4,096 bytes.",
        "Read the message: it names the parameter and the constraint. For data larger than "
        "4 KB, use envelope encryption (GenerateDataKey).",
    ),
    (
        "InvalidArnException",
        "The ARN is malformed.",
        "A key ARN looks like arn:aws:kms:<region>:<account>:key/<key id>.",
    ),
    (
        "InvalidMarkerException",
        "The pagination marker is not one KMS issued.",
        "Pass NextMarker from the previous response unchanged, or use a paginator.",
    ),
]

for _code, _meaning, _fix in _KMS_ERRORS:
    register_explanation(_code, _meaning, _fix)
