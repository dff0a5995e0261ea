"""The fast path of XML parsing: WeChat's own flat `<xml>` shape, read without a tree.

Every callback WeChat sends in practice, and the outer envelope of every encrypted one,
is `<xml>` holding one level of `<Tag><![CDATA[text]]></Tag>` or `<Tag>text</Tag>`,
with whitespace between them. `flat_fields` recognises exactly that shape in UTF-8 and
returns its fields; for anything else (a declaration, BOM, DTD, comment, attribute,
entity or character reference, nesting, repeated tag, split CDATA, `\\r`, a control
character or non-character) it returns None, and the caller hands the body to the
hardened libxml2 parser, which decides.

The recognised subset is well-formed XML whose fields libxml2 reads identically (a
differential test holds the two to that), so it accepts nothing the full parser refuses
and skips no check: there is no DTD or entity to expand and no nesting to limit. Every
quantifier is possessive, so matching is linear in the body's length.
"""

from __future__ import annotations

import re

__all__ = ("flat_fields",)

# Never matched by the pattern: C0 controls but tab and newline (`\r` included: a parser
# normalises it to `\n`), DEL, and the non-characters U+FFFE and U+FFFF.
_CONTROL_BYTES = bytes(range(0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"

_START = re.compile("<xml>[ \t\n]*+")
_END = re.compile("</xml>[ \t\n]*+")
_FIELD = re.compile(
    r"<([A-Za-z_][A-Za-z0-9_]{0,63})>"  # a short ASCII name, as WeChat uses
    r"(?:<!\[CDATA\[([^\]]*+(?:\](?!\]>)[^\]]*+)*+)\]\]>"  # one CDATA section (so no `]]>` inside)
    r"|([^<&\]]*+))"  # or character data: no markup, reference or `]`
    r"</\1>[ \t\n]*+"
)


def flat_fields(body: bytes) -> dict[str, str] | None:
    """{tag: text} of a body in WeChat's flat shape, in document order; None if it is not."""
    if len(body.translate(None, _CONTROL_BYTES)) != len(body):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\ufffe" in text or "\uffff" in text:
        return None
    start = _START.match(text)
    if start is None:
        return None
    fields: dict[str, str] = {}
    pos = start.end()
    match_field = _FIELD.match
    while field := match_field(text, pos):
        tag, cdata, plain = field.groups()
        if tag in fields:
            return None  # repeats are numbered by the full parser
        fields[tag] = plain if cdata is None else cdata
        pos = field.end()
    return fields if _END.fullmatch(text, pos) else None
