"""Whether a user's stored conversation survived a crash intact.

Pure: compares the session the worker serves (`/wxstream/session/{account}/{openid}`)
with what the user sent. Every message the model answered is one user turn, followed by
its answer, in the order the user wrote them; the session keeps the last
`max_turns` exchanges. A crash must neither drop a turn (state not restored) nor add one
twice (a message processed again), nor reorder them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from chaos.ledger import Sent

__all__ = ("session_problems",)


def session_problems(answered: Sequence[Sent], turns: Sequence[Mapping[str, str]], max_turns: int) -> list[str]:
    """What is wrong with `turns`, given the user's messages the model `answered`, in the
    order sent; [] when nothing is. With the echo model an answer repeats its message."""
    problems = []
    roles = [turn.get("role") for turn in turns]
    if roles != ["user", "assistant"] * (len(turns) // 2) or len(turns) % 2:
        problems.append(f"turns are not user/assistant pairs: {roles}")
    refs = [turn.get("ref", "") for turn in turns if turn.get("role") == "user"]
    repeated = sorted({ref for ref in refs if refs.count(ref) > 1})
    if repeated:
        problems.append(f"messages with two turns: {', '.join(repeated)}")
    wanted = [f"msg:{m.msg_id}" for m in answered][-max_turns:] if max_turns else []
    if refs != wanted:
        missing = [ref for ref in wanted if ref not in refs]
        extra = [ref for ref in refs if ref not in wanted]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "out of order"
        problems.append(f"holds {len(refs)} user turns, expected the last {len(wanted)} answered messages: {detail}")
    for question, answer in zip(turns[::2], turns[1::2]):
        if answer.get("text") != question.get("text"):
            problems.append(f"turn {question.get('ref')} answered with {answer.get('text')!r:.60}")
    return problems
