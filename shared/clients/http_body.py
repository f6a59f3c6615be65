"""Reading an answer of the supplier or the shop whole, up to a size bound.

A body is read into memory before it is parsed; without a bound, a proxy's
endless page or a misconfigured URL would take the worker's memory with it.
The request is made with `stream=True` and the body read here, chunk by chunk
(decompressed, so a small gzip that inflates hugely counts at its real size).
"""
from __future__ import annotations

import requests

MIB = 1024 * 1024
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The answer is longer than the bound; nothing of it is kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {describe(limit)}: not read")
        self.limit = limit


def describe(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"


def read_bounded(response: requests.Response, limit: int) -> bytes:
    """The whole body of a `stream=True` response, kept as its `.content` (so `.json()` and `.text`
    work as usual), or BodyTooLarge beyond `limit` bytes (the connection is closed)."""
    if response._content is not False:  # read already (requests keeps False until it is)
        if len(response.content) > limit:
            raise BodyTooLarge(limit)
        return response.content
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > limit:
            response.close()
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    response._content = body  # what requests itself keeps once it has read a body
    return body
