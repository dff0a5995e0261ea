"""The text-generation model of triton_models/ (glm4, glm4_stream, assistant share its
code): GLM-4 prompts parsed into chat turns, text decoded token by token, stop words.
The pure parts only; tests/integration/test_models.py runs it in tritonserver."""

from __future__ import annotations


from hypothesis import given, settings
from hypothesis import strategies as st

from agents import sessions
from agents.sessions import render_prompt
from tests.unit.triton_models import REPOSITORY, load_model
from tables.sessions import Turn



model = load_model("glm4")


def test_the_other_models_run_the_same_file():
    for name in ("glm4_stream", "assistant"):
        link = REPOSITORY / name / "1" / "model.py"
        assert link.is_symlink() and link.resolve() == (REPOSITORY / "glm4" / "1" / "model.py").resolve()


# --- GLM-4 prompts as chat turns -----------------------------------------------------


def test_prompt_with_system_and_history_becomes_messages():
    turns = (Turn(role="user", text="hi"), Turn(role="assistant", text="hello!"))
    prompt = render_prompt("Be brief.", turns, "What is 2+2?")
    assert model.glm4_messages(prompt) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]


def test_text_without_the_template_is_one_user_turn():
    assert model.glm4_messages("  just a question\n") == [{"role": "user", "content": "just a question"}]


def test_observation_turns_become_user_turns():
    prompt = "[gMASK]<sop><|user|>\nq<|observation|>\n42<|assistant|>\n"
    assert model.glm4_messages(prompt) == [{"role": "user", "content": "q"}, {"role": "user", "content": "42"}]


marker_text = st.lists(
    st.text(max_size=8) | st.sampled_from(["<|user|>", "<|assistant|>\n", "<|system|>\n", "[gMASK]<sop>", "\n", "😀"]),
    max_size=5,
).map("".join)


@settings(max_examples=100, deadline=None)
@given(
    system_prompt=st.text(max_size=20).filter(lambda s: sessions._plain(s) == s),
    history=st.lists(st.builds(Turn, role=st.sampled_from(["user", "assistant"]), text=marker_text), max_size=4),
    text=marker_text,
)
def test_every_rendered_prompt_parses_back_into_its_turns(system_prompt, history, text):
    expected = [{"role": "system", "content": system_prompt.strip()}] if system_prompt else []
    expected += [{"role": t.role, "content": sessions._plain(t.text).strip()} for t in history]
    expected.append({"role": "user", "content": sessions._plain(text).strip()})
    assert model.glm4_messages(render_prompt(system_prompt, tuple(history), text)) == expected


# --- text, one token at a time -------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_byte_tokens_stream_into_the_text_decoded_at_once(data):
    text = model.ByteText()
    streamed = "".join(text.push(b + model.BYTE_OFFSET) for b in data) + text.flush()
    assert streamed == data.decode("utf-8", errors="replace")


def test_special_byte_ids_add_no_text():
    text = model.ByteText()
    assert [text.push(i) for i in (0, 1, 2)] == ["", "", ""]
    assert model.byte_ids("é") == [0xC3 + 3, 0xA9 + 3]


class BytePieces:
    """A stand-in tokenizer whose tokens are byte strings, like byte-level BPE."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def decode(self, ids, **_kwargs) -> str:
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=3), min_size=1, max_size=8), st.data())
def test_tokenizer_tokens_stream_into_the_text_decoded_at_once(pieces, data):
    tokenizer = BytePieces(pieces)
    ids = data.draw(st.lists(st.integers(0, len(pieces) - 1), max_size=20))
    text = model.TokenizerText(tokenizer)
    chunks = [text.push(i) for i in ids]
    assert "".join(chunks) + text.flush() == tokenizer.decode(ids)


def test_tokenizer_text_holds_back_half_a_character():
    tokenizer = BytePieces(["世".encode()[:2], "世".encode()[2:], b"!"])
    text = model.TokenizerText(tokenizer)
    assert [text.push(0), text.push(1), text.push(2)] == ["", "世", "!"]


# --- stop words ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("abc", max_size=4), max_size=8), st.lists(st.text("abc", max_size=3), max_size=3))
def test_stop_words_cut_the_stream_where_they_cut_the_text_so_far(chunks, words):
    """Generation ends after the first token whose text contains a stop word; the reply is
    that text up to the earliest stop word in it."""
    expected, stopped = "".join(chunks), False
    for i in range(1, len(chunks) + 1):
        so_far = "".join(chunks[:i])
        hits = [so_far.find(w) for w in words if w and w in so_far]
        if hits:
            expected, stopped = so_far[: min(hits)], True
            break
    stops = model.StopWords(words)
    streamed = "".join(stops.push(c) for c in chunks) + stops.flush()
    assert (streamed, stops.stopped) == (expected, stopped)


def test_stop_words_hold_back_a_possible_start_only():
    stops = model.StopWords(["STOP"])
    assert stops.push("ab ST") == "ab "
    assert stops.push("ay") == "STay"
    assert stops.push(" S") == " "
    assert stops.push("TOP and more") == ""
    assert stops.stopped and stops.flush() == ""
