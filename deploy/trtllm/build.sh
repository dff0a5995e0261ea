#!/usr/bin/env bash
# Build GLM-4-9B-chat for Triton with TensorRT-LLM, on one GPU, in three steps:
#
#   convert  Hugging Face checkpoint -> TensorRT-LLM checkpoint (TensorRT-LLM's GLM-4
#            example convert_checkpoint.py; INT8/INT4 weight-only, or FP8 through
#            examples/quantization/quantize.py)
#   engine   TensorRT-LLM checkpoint -> TensorRT engine (trtllm-build: in-flight batching,
#            paged KV cache with paged context attention, the batch and length limits below)
#   repo     the tokenizer (with <|user|> as its end token) and the Triton model repository:
#            deploy/trtllm/model_repo's templates filled, plus the stock pre/postprocessing
#            model.py from TensorRT-LLM's triton_backend
#
#   deploy/trtllm/build.sh                  # all three
#   deploy/trtllm/build.sh repo             # only refill the repository (no GPU needed)
#   QUANT=fp8 CALIB_DATASET=/data/calib deploy/trtllm/build.sh
#
# Run it inside nvcr.io/nvidia/tritonserver:25.06-trtllm-python-py3 (TensorRT-LLM 0.20.0),
# with TRTLLM_DIR a checkout of TensorRT-LLM at v0.20.0 and MODEL_DIR the downloaded
# checkpoint; nothing is downloaded here. See deploy/trtllm/README.md. Every setting below
# is an environment variable with a default.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

# --- inputs and outputs --------------------------------------------------------------
MODEL_DIR="${MODEL_DIR:-}"                   # Hugging Face checkpoint of THUDM/glm-4-9b-chat
TRTLLM_DIR="${TRTLLM_DIR:-}"                 # TensorRT-LLM source, same version as the image
GLM_EXAMPLE_DIR="${GLM_EXAMPLE_DIR:-${TRTLLM_DIR}/examples/models/core/glm-4-9b}"
ALL_MODELS_DIR="${ALL_MODELS_DIR:-${TRTLLM_DIR}/triton_backend/all_models/inflight_batcher_llm}"
OUT_DIR="${OUT_DIR:-${HERE}/build}"          # checkpoint/ engine/ tokenizer/ model_repo/
SERVE_DIR="${SERVE_DIR:-/trtllm}"            # where tritonserver sees OUT_DIR (paths in the configs)

# --- model and engine ----------------------------------------------------------------
QUANT="${QUANT:-int8_wo}"                    # none | int8_wo | int4_wo | fp8 (Hopper/Ada only)
DTYPE="${DTYPE:-bfloat16}"                   # activations and unquantized weights
CALIB_DATASET="${CALIB_DATASET:-}"           # fp8 only: a local calibration dataset
MAX_BATCH_SIZE="${MAX_BATCH_SIZE:-64}"       # requests in flight on the GPU at once
MAX_INPUT_LEN="${MAX_INPUT_LEN:-3072}"       # prompt tokens: system prompt + bounded history
MAX_SEQ_LEN="${MAX_SEQ_LEN:-4096}"           # prompt + reply tokens
MAX_NUM_TOKENS="${MAX_NUM_TOKENS:-8192}"     # tokens per engine step, across the batch

# --- serving -------------------------------------------------------------------------
STREAMING="${STREAMING:-0}"                  # 1: decoupled tensorrt_llm, for WXSTREAM_MODEL_STREAM=1
TRITON_MAX_BATCH_SIZE="${TRITON_MAX_BATCH_SIZE:-${MAX_BATCH_SIZE}}"
INSTANCE_COUNT="${INSTANCE_COUNT:-4}"        # pre- and postprocessing model instances (CPU)
MAX_QUEUE_DELAY_MICROSECONDS="${MAX_QUEUE_DELAY_MICROSECONDS:-0}"
MAX_QUEUE_SIZE="${MAX_QUEUE_SIZE:-256}"      # requests waiting beyond that are refused at once
KV_CACHE_FREE_GPU_MEM_FRACTION="${KV_CACHE_FREE_GPU_MEM_FRACTION:-0.85}"
BATCH_SCHEDULER_POLICY="${BATCH_SCHEDULER_POLICY:-guaranteed_no_evict}"
END_TOKEN="${END_TOKEN:-<|user|>}"           # GLM-4 chat: the token after the assistant's turn

CHECKPOINT_DIR="${OUT_DIR}/checkpoint"
ENGINE_DIR="${OUT_DIR}/engine"
TOKENIZER_DIR="${OUT_DIR}/tokenizer"
REPO_DIR="${OUT_DIR}/model_repo"

die() { echo "build.sh: $*" >&2; exit 1; }
need_dir() { [[ -n "$2" && -d "$2" ]] || die "$1 must name a directory (got '${2}'): $3"; }

convert() {
    need_dir MODEL_DIR "${MODEL_DIR}" "the Hugging Face checkpoint of GLM-4-9B-chat"
    need_dir TRTLLM_DIR "${TRTLLM_DIR}" "a TensorRT-LLM checkout at the image's version (v0.20.0)"
    local args=(--model_dir "${MODEL_DIR}" --output_dir "${CHECKPOINT_DIR}" --dtype "${DTYPE}" --tp_size 1)
    case "${QUANT}" in
        none) "${PYTHON}" "${GLM_EXAMPLE_DIR}/convert_checkpoint.py" "${args[@]}" ;;
        int8_wo | int4_wo)
            "${PYTHON}" "${GLM_EXAMPLE_DIR}/convert_checkpoint.py" "${args[@]}" \
                --use_weight_only --weight_only_precision "${QUANT%_wo}" ;;
        fp8)
            need_dir CALIB_DATASET "${CALIB_DATASET}" "FP8 calibration data on local disk (quantize.py would download cnn_dailymail)"
            "${PYTHON}" "${TRTLLM_DIR}/examples/quantization/quantize.py" "${args[@]}" \
                --qformat fp8 --kv_cache_dtype fp8 --calib_dataset "${CALIB_DATASET}" ;;
        *) die "QUANT must be none, int8_wo, int4_wo or fp8 (got '${QUANT}')" ;;
    esac
}

engine() {
    [[ -f "${CHECKPOINT_DIR}/config.json" ]] || die "no TensorRT-LLM checkpoint in ${CHECKPOINT_DIR}: run the convert step first"
    trtllm-build \
        --checkpoint_dir "${CHECKPOINT_DIR}" \
        --output_dir "${ENGINE_DIR}" \
        --gemm_plugin auto \
        --gpt_attention_plugin auto \
        --kv_cache_type paged \
        --remove_input_padding enable \
        --context_fmha enable \
        --use_paged_context_fmha enable \
        --max_batch_size "${MAX_BATCH_SIZE}" \
        --max_input_len "${MAX_INPUT_LEN}" \
        --max_seq_len "${MAX_SEQ_LEN}" \
        --max_num_tokens "${MAX_NUM_TOKENS}"
}

repo() {
    need_dir MODEL_DIR "${MODEL_DIR}" "the Hugging Face checkpoint of GLM-4-9B-chat (for its tokenizer)"
    need_dir ALL_MODELS_DIR "${ALL_MODELS_DIR}" "TensorRT-LLM's triton_backend/all_models/inflight_batcher_llm (set TRTLLM_DIR)"
    local decoupled
    case "${STREAMING}" in 0) decoupled=false ;; 1) decoupled=true ;; *) die "STREAMING must be 0 or 1 (got '${STREAMING}')" ;; esac
    "${PYTHON}" "${HERE}/copy_tokenizer.py" "${MODEL_DIR}" "${TOKENIZER_DIR}" --eos-token "${END_TOKEN}"
    "${PYTHON}" "${HERE}/fill_templates.py" "${HERE}/model_repo" "${REPO_DIR}" \
        "triton_max_batch_size=${TRITON_MAX_BATCH_SIZE}" \
        "decoupled_mode=${decoupled}" \
        "engine_dir=${SERVE_DIR}/engine" \
        "tokenizer_dir=${SERVE_DIR}/tokenizer" \
        "add_special_tokens=false" \
        "skip_special_tokens=true" \
        "preprocessing_instance_count=${INSTANCE_COUNT}" \
        "postprocessing_instance_count=${INSTANCE_COUNT}" \
        "batching_strategy=inflight_fused_batching" \
        "batch_scheduler_policy=${BATCH_SCHEDULER_POLICY}" \
        "max_queue_delay_microseconds=${MAX_QUEUE_DELAY_MICROSECONDS}" \
        "max_queue_size=${MAX_QUEUE_SIZE}" \
        "kv_cache_free_gpu_mem_fraction=${KV_CACHE_FREE_GPU_MEM_FRACTION}" \
        "enable_kv_cache_reuse=true" \
        "enable_chunked_context=true" \
        "exclude_input_in_output=true"
    local model
    for model in assistant tensorrt_llm preprocessing postprocessing; do
        mkdir -p "${REPO_DIR}/${model}/1"  # Triton needs a version directory, even an empty one
    done
    for model in preprocessing postprocessing; do
        [[ -f "${ALL_MODELS_DIR}/${model}/1/model.py" ]] || die "no ${model}/1/model.py in ${ALL_MODELS_DIR}"
        cp "${ALL_MODELS_DIR}/${model}/1/model.py" "${REPO_DIR}/${model}/1/model.py"
    done
    echo "model repository: ${REPO_DIR} (serve ${OUT_DIR} as ${SERVE_DIR}; decoupled_mode ${decoupled})"
    echo "  tritonserver --model-repository=${SERVE_DIR}/model_repo --grpc-port=8001 --http-port=8000 --metrics-port=8002 --disable-auto-complete-config"
}

steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(convert engine repo)
for step in "${steps[@]}"; do
    case "${step}" in
        convert | engine | repo) echo "==> ${step}"; "${step}" ;;
        *) die "unknown step '${step}': expected convert, engine or repo" ;;
    esac
done
