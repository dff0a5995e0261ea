"""deploy/trtllm without a GPU: build.sh's repository step fills the templates with its
defaults, and the result is checked as far as it can be offline. The `assistant` ensemble
must keep the CPU models' IO contract exactly as the client uses it (so the client never
changes), be wired the way Triton will insist on when it loads it, and give the stock
TensorRT-LLM models every tensor and parameter they read at load time."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2

from app.clients.triton import request_inputs
from tests.model_contract import CONTRACT_INPUTS, CONTRACT_OUTPUTS, WIRE_TYPES, io_signature, read_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "trtllm"
MODELS = ("assistant", "preprocessing", "tensorrt_llm", "postprocessing")
SERVE_DIR = "/trtllm"  # build.sh's default


def load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"trtllm_{name}", DEPLOY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fill_templates = load("fill_templates")
copy_tokenizer = load("copy_tokenizer")


def fake_inputs(root: Path) -> dict[str, str]:
    """A checkpoint with GLM-4's tokenizer config (no real weights) and a TensorRT-LLM
    checkout with stand-ins for the stock pre/postprocessing code."""
    model = root / "glm-4-9b-chat"
    model.mkdir(parents=True)
    tokens = ("<|endoftext|>", "<|user|>", "<|assistant|>")
    added = {str(151329 + i): {"content": token} for i, token in enumerate(tokens)}
    config = {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "added_tokens_decoder": added}
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    (model / "tokenization_chatglm.py").write_text("# the tokenizer's code\n")
    (model / "tokenizer.model").write_bytes(b"vocabulary")
    (model / "model-00001-of-00010.safetensors").write_bytes(b"weights")
    trtllm = root / "TensorRT-LLM"
    for name in ("preprocessing", "postprocessing"):
        code = trtllm / "triton_backend" / "all_models" / "inflight_batcher_llm" / name / "1" / "model.py"
        code.parent.mkdir(parents=True)
        code.write_text(f"# stock {name}\n")
    return {"MODEL_DIR": str(model), "TRTLLM_DIR": str(trtllm)}


def build(root: Path, *steps: str, **env: str) -> subprocess.CompletedProcess:
    variables = {"PATH": os.environ["PATH"], "PYTHON": sys.executable, "OUT_DIR": str(root / "out"), **env}
    return subprocess.run(
        ["bash", str(DEPLOY / "build.sh"), *steps], env=variables, capture_output=True, text=True, timeout=60
    )


def built_repository(root: Path, **env: str) -> Path:
    done = build(root, "repo", **{**fake_inputs(root), **env})
    assert done.returncode == 0, done.stderr
    return root / "out"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_repository(tmp_path_factory.mktemp("trtllm"))


@pytest.fixture(scope="module")
def configs(out: Path) -> dict[str, model_config_pb2.ModelConfig]:
    return {name: read_config(out / "model_repo" / name / "config.pbtxt") for name in MODELS}


def parameter(config: model_config_pb2.ModelConfig, key: str) -> str:
    assert key in config.parameters, f"{config.name} has no parameter {key}"
    return config.parameters[key].string_value


# --- the filled repository -------------------------------------------------------------


def test_the_repository_holds_the_four_models_with_version_directories(out: Path, configs):
    repository = out / "model_repo"
    assert sorted(p.name for p in repository.iterdir()) == sorted(MODELS)
    for name, config in configs.items():
        assert config.name == name
        assert (repository / name / "1").is_dir(), name


def test_no_placeholder_is_left(out: Path):
    for path in (out / "model_repo").rglob("config.pbtxt"):
        assert not fill_templates.placeholders(path.read_text()), path


def test_the_stock_pre_and_postprocessing_code_is_copied(out: Path):
    for name in ("preprocessing", "postprocessing"):
        assert (out / "model_repo" / name / "1" / "model.py").read_text() == f"# stock {name}\n"


def test_paths_point_into_the_served_directory(configs):
    assert parameter(configs["tensorrt_llm"], "gpt_model_path") == f"{SERVE_DIR}/engine"
    for name in ("preprocessing", "postprocessing"):
        assert parameter(configs[name], "tokenizer_dir") == f"{SERVE_DIR}/tokenizer"


# --- the client's contract -------------------------------------------------------------


def test_the_ensemble_keeps_the_io_contract_of_the_cpu_models(configs):
    ensemble = configs["assistant"]
    assert ensemble.platform == "ensemble"
    assert io_signature(ensemble) == (CONTRACT_INPUTS, CONTRACT_OUTPUTS)
    assert ensemble.max_batch_size > 0  # batched: clients send shape [1, 1]


@pytest.mark.parametrize("stream", [False, True])
def test_what_the_client_sends_is_what_the_ensemble_takes(configs, stream):
    inputs = {i.name: i for i in configs["assistant"].input}
    sent = request_inputs("[gMASK]<sop><|user|>\nhi<|assistant|>\n", 16, stream=stream)
    for tensor in sent:
        declared = inputs[tensor.name()]
        assert tensor.datatype() == WIRE_TYPES[declared.data_type], tensor.name()
        assert tensor.shape() == [1, *declared.dims], tensor.name()  # batch of one
    required = {name for name, i in inputs.items() if not i.optional}
    assert required <= {tensor.name() for tensor in sent}
    assert [o.name for o in configs["assistant"].output] == ["text_output"]


# --- what Triton checks when it loads the ensemble -------------------------------------


def compatible(a: list[int], b: list[int]) -> bool:
    return len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b))


def test_the_ensemble_is_wired_consistently(configs):
    ensemble = configs["assistant"]
    tensors = {i.name: (i.data_type, list(i.dims)) for i in ensemble.input}
    for step in ensemble.ensemble_scheduling.step:
        model = configs[step.model_name]
        assert model.max_batch_size >= ensemble.max_batch_size, model.name
        inputs = {i.name: i for i in model.input}
        outputs = {o.name: o for o in model.output}
        for key, source in step.input_map.items():
            assert key in inputs, f"{model.name} has no input {key}"
            assert source in tensors, f"{model.name}.{key} reads {source}, which nothing before it produces"
            data_type, dims = tensors[source]
            assert data_type == inputs[key].data_type, f"{model.name}.{key}: type of {source}"
            assert compatible(dims, list(inputs[key].dims)), f"{model.name}.{key}: dims of {source}"
        unfed = {name for name, i in inputs.items() if not i.optional} - set(step.input_map)
        assert not unfed, f"{model.name} needs {unfed}"
        for key, target in step.output_map.items():
            assert key in outputs, f"{model.name} has no output {key}"
            assert target not in tensors, f"{target} is produced twice"
            tensors[target] = (outputs[key].data_type, list(outputs[key].dims))
    for output in ensemble.output:
        assert tensors[output.name] == (output.data_type, list(output.dims)), output.name


def test_the_stock_preprocessing_finds_every_tensor_and_parameter_it_reads_at_load(configs):
    # TensorRT-LLM's preprocessing/1/model.py (initialize) looks these up and fails without them.
    preprocessing = configs["preprocessing"]
    outputs = {
        "INPUT_ID", "DECODER_INPUT_ID", "REQUEST_INPUT_LEN", "REQUEST_DECODER_INPUT_LEN", "BAD_WORDS_IDS",
        "STOP_WORDS_IDS", "OUT_END_ID", "OUT_PAD_ID", "OUT_PROMPT_TABLE_EXTRA_IDS", "PIXEL_VALUES", "IMAGE_SIZES",
    }  # fmt: skip
    assert outputs <= {o.name for o in preprocessing.output}
    assert {"EMBEDDING_BIAS_WORDS", "EMBEDDING_BIAS_WEIGHTS"} <= {i.name for i in preprocessing.input}
    assert parameter(preprocessing, "multimodal_model_path") == ""  # text only


def test_the_tensorrt_llm_backend_finds_the_parameters_it_has_no_default_for(configs):
    trtllm = configs["tensorrt_llm"]
    assert trtllm.backend == "tensorrtllm"
    assert parameter(trtllm, "gpt_model_type") == "inflight_fused_batching"
    for key in ("tokenizer_dir", "xgrammar_tokenizer_info_path", "guided_decoding_backend"):
        assert parameter(trtllm, key) == "", key  # empty: no guided decoding


def test_replies_are_only_the_generated_text_of_a_prompt_in_glm4_template(configs):
    assert parameter(configs["preprocessing"], "add_special_tokens") == "false"  # the prompt has [gMASK]<sop>
    assert parameter(configs["postprocessing"], "skip_special_tokens") == "true"
    assert parameter(configs["tensorrt_llm"], "exclude_input_in_output") == "true"


def test_conversations_reuse_their_kv_cache(configs):
    assert parameter(configs["tensorrt_llm"], "enable_kv_cache_reuse") == "true"


# --- decoupled mode and the tokenizer -------------------------------------------------


def test_the_default_build_answers_unary_requests(configs):
    assert not configs["tensorrt_llm"].model_transaction_policy.decoupled


def test_streaming_builds_a_decoupled_model(tmp_path: Path):
    out = built_repository(tmp_path, STREAMING="1")
    assert read_config(out / "model_repo" / "tensorrt_llm" / "config.pbtxt").model_transaction_policy.decoupled


def test_the_tokenizer_ends_a_reply_at_the_next_user_turn(out: Path):
    tokenizer = out / "tokenizer"
    assert json.loads((tokenizer / "tokenizer_config.json").read_text())["eos_token"] == "<|user|>"
    copied = sorted(p.name for p in tokenizer.iterdir())
    assert copied == ["tokenization_chatglm.py", "tokenizer.model", "tokenizer_config.json"]  # no weights


def test_an_end_token_the_tokenizer_does_not_know_is_refused():
    config = {"eos_token": {"content": "<|endoftext|>", "special": True}}
    config["added_tokens_decoder"] = {"151336": {"content": "<|user|>"}}
    assert copy_tokenizer.with_eos_token(config, "<|user|>")["eos_token"] == {"content": "<|user|>", "special": True}
    with pytest.raises(copy_tokenizer.TokenizerError, match="not a special token"):
        copy_tokenizer.with_eos_token(config, "<|usr|>")


# --- strict filling and the script's errors ----------------------------------------------


def test_every_placeholder_needs_a_value_and_every_value_a_placeholder():
    assert fill_templates.fill({"a": "x: ${one} ${two}"}, {"one": "1", "two": "2"}) == {"a": "x: 1 2"}
    with pytest.raises(fill_templates.FillError, match=r"a: no value for \$\{two\}"):
        fill_templates.fill({"a": "${one} ${two}"}, {"one": "1"})
    with pytest.raises(fill_templates.FillError, match="no template has a placeholder for typo"):
        fill_templates.fill({"a": "${one}"}, {"one": "1", "typo": "2"})
    with pytest.raises(fill_templates.FillError, match="expected name=value"):
        fill_templates.parse_values(["one:1"])


@pytest.mark.parametrize(
    ("steps", "env", "message"),
    [
        (("deploy",), {}, "unknown step 'deploy'"),
        (("repo",), {"STREAMING": "yes"}, "STREAMING must be 0 or 1"),
        (("convert",), {"QUANT": "int3"}, "QUANT must be none, int8_wo, int4_wo or fp8"),
        (("convert",), {"QUANT": "fp8"}, "CALIB_DATASET must name a directory"),
        (("engine",), {}, "run the convert step first"),
    ],
)
def test_the_script_says_what_is_wrong(tmp_path: Path, steps, env, message):
    done = build(tmp_path, *steps, **{**fake_inputs(tmp_path), **env})
    assert done.returncode != 0
    assert message in done.stderr


def test_the_script_needs_the_checkpoint(tmp_path: Path):
    done = build(tmp_path, "repo", MODEL_DIR="", TRTLLM_DIR=str(tmp_path))
    assert done.returncode != 0 and "MODEL_DIR must name a directory" in done.stderr
    assert re.search(r"Hugging Face checkpoint", done.stderr)
