"""Cutting a long reply into customer-service messages under WeChat's size limit."""

from __future__ import annotations

__all__ = ("split_text", "cut_to_fit")

SENTENCE_ENDS = frozenset("。！？!?.;；…\n")


def split_text(text: str, limit: int) -> tuple[str, ...]:
    """Parts of `text`, each at most `limit` UTF-8 bytes, that join back to `text`.

    A part ends after the last sentence end within the limit when that keeps at least
    half of the part, else after the last whitespace on the same terms, else at the last
    whole character that fits: never inside a character, rarely inside a sentence.
    """
    if limit < 4:
        raise ValueError("the limit must hold at least one character (4 bytes)")
    parts: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        head = rest.encode("utf-8")[:limit].decode("utf-8", "ignore")  # whole characters only
        cut = _boundary(head)
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return tuple(parts)


def _boundary(head: str) -> int:
    half = len(head) // 2
    for accept in (SENTENCE_ENDS.__contains__, str.isspace):
        for index in range(len(head) - 1, half - 1, -1):
            if accept(head[index]):
                return index + 1
    return len(head)


def cut_to_fit(text: str, limit: int, ending: str) -> tuple[str, str]:
    """(what fits in one message of `limit` UTF-8 bytes, the rest): `text` and "" when it
    fits, else its head, cut where `split_text` would cut, closed by `ending`."""
    if len(text.encode("utf-8")) <= limit:
        return text, ""
    closing = f"\n\n{ending}"
    head = split_text(text, limit - len(closing.encode("utf-8")))[0]
    return head.rstrip() + closing, text[len(head) :].lstrip()
