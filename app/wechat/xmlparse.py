"""Hardened parsing of WeChat's XML into an ordered mapping of field name to text.

WeChat sends a flat `<xml>` element, nested only for a few events (e.g. SendPicsInfo).
Bodies over the size limit are refused before anything reads them. A body in the flat
shape WeChat sends is then read by `flatxml` without building a tree; every other body
goes to libxml2, which refuses documents with a DTD and trees deeper than WeChat ever
sends, and drops comments and processing instructions. lxml runs with entity
resolution, DTD loading and network access off, so XXE, billion laughs and quadratic
blow-up expand nothing; the document is then rejected for carrying a DTD. The check
looks at the parsed document, not the bytes, so a user's text that merely contains
`<!DOCTYPE` (inside CDATA) is still accepted.
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import Mapping

from lxml import etree

from app.wechat.errors import TooLargeError, XMLError
from app.wechat.flatxml import flat_fields
from app.wechat.replies import cdata

__all__ = ("parse_fields", "tree_fields", "render_fields", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH")

DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_DEPTH = 6

_PARSER = etree.XMLParser(
    encoding="utf-8",
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,  # dropped, never applied (an xml-stylesheet PI is inert here)
    collect_ids=False,
)
_LOCAL = threading.local()


def parse_fields(
    body: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Mapping[str, str]:
    """Parse `<xml>...</xml>` into {tag: text}; nested tags become dotted paths.

    A tag repeated under the same parent gets `#2`, `#3`, ... appended from its second
    occurrence on, so no value is silently dropped.
    """
    if len(body) > max_bytes:
        raise TooLargeError(f"body of {len(body)} bytes exceeds {max_bytes}")
    fields = flat_fields(body) if max_depth >= 1 else None
    return MappingProxyType(tree_fields(body, max_depth=max_depth) if fields is None else fields)


def tree_fields(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, str]:
    """`parse_fields` by libxml2 alone, for every shape of document; no size check."""
    try:
        root = _parse(body)
    except (etree.XMLSyntaxError, ValueError) as exc:
        too_large = getattr(exc, "code", None) == etree.ErrorTypes.ERR_RESOURCE_LIMIT
        raise (TooLargeError if too_large else XMLError)(f"malformed XML: {exc}") from None
    if root is not None and _has_dtd(root):
        raise XMLError("DTDs and entity declarations are not allowed")
    if root is None or root.tag != "xml":
        raise XMLError(f"root element must be <xml>, got <{getattr(root, 'tag', None)}>")
    fields: dict[str, str] = {}
    _flatten(root, "", fields, 1, max_depth)
    return fields


def _parse(body: bytes):
    """`etree.fromstring(body, _PARSER)` through lxml's feed interface: the same libxml2
    parser and options, but libxml2 reads CDATA sections (WeChat quotes nearly every field,
    and the whole ciphertext, in one) much faster this way. A feed parser holds one
    document's state, so each thread has its own copy, and one that raised is dropped."""
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = _PARSER.copy()
    try:
        parser.feed(body)
        return parser.close()
    except BaseException:
        _LOCAL.parser = None
        raise


def _has_dtd(root) -> bool:
    docinfo = root.getroottree().docinfo
    return bool(docinfo.doctype) or docinfo.internalDTD is not None or docinfo.externalDTD is not None


def _flatten(element, prefix: str, out: dict[str, str], depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise TooLargeError(f"XML nested deeper than {max_depth}")
    seen: dict[str, int] = {}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):  # comments and PIs, should the parser keep any
            continue
        n = seen[tag] = seen.get(tag, 0) + 1
        key = prefix + tag if n == 1 else f"{prefix}{tag}#{n}"
        if len(child):
            _flatten(child, key + ".", out, depth + 1, max_depth)
        else:
            out[key] = child.text or ""


def render_fields(fields: Mapping[str, str]) -> str:
    """Flat fields back to WeChat's `<xml>` (the inverse of `parse_fields` for flat input)."""
    return "<xml>" + "".join(f"<{tag}>{cdata(value)}</{tag}>" for tag, value in fields.items()) + "</xml>"
