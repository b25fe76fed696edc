"""One paginator for every simulated list/describe operation.

AWS list calls return a page of results and an opaque token for the next page
(``NextToken`` in cloudhsmv2 and ec2, ``NextMarker``/``Marker`` in kms). The lab's token
is the URL-safe base64 of ``<operation>:<offset>``, so a token from another operation or a
made-up one is refused with the service's own error. Page-size limits come from the
service model and are checked by :mod:`labsupport.aws.validation` before a call is sent;
:func:`paginate` applies the default page size.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any


class InvalidPageToken(ValueError):
    """The page token was not issued by this operation (the message says what to do)."""


@dataclass(frozen=True)
class Page:
    """One page of ``items`` and the token for the next one (None on the last page)."""

    items: list[Any]
    next_token: str | None


def encode_token(operation: str, offset: int) -> str:
    """The opaque token that resumes ``operation`` at ``offset``."""
    return base64.urlsafe_b64encode(f"{operation}:{offset}".encode()).decode()


def decode_token(operation: str, token: str, name: str = "NextToken") -> int:
    """The offset in ``token`` (the ``name`` parameter); raises :class:`InvalidPageToken`."""
    try:
        kind, _, offset = base64.urlsafe_b64decode(token.encode()).decode().rpartition(":")
        start = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise InvalidPageToken(
            f"The {name} is not valid; pass the {name} of the previous page unchanged "
            "(or use a boto3 paginator)."
        ) from None
    if kind != operation or start < 0:
        raise InvalidPageToken(
            f"The {name} was not issued by {operation}; pass the {name} of the previous "
            "page of this same call."
        )
    return start


def paginate(
    operation: str,
    items: list[Any],
    token: str | None,
    page_size: int | None,
    default: int,
    token_name: str = "NextToken",
) -> Page:
    """The page of ``items`` that ``token`` (None = first page) and ``page_size`` select.

    A token past the end (the list shrank since) gives an empty last page, as AWS does.
    """
    start = decode_token(operation, token, token_name) if token else 0
    size = page_size or default
    page = items[start : start + size]
    more = start + size < len(items)
    return Page(page, encode_token(operation, start + size) if more else None)
