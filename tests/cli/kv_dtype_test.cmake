# `--kv-dtype` on the command line: bench and generate run with a bf16 KV cache (half the
# bytes a token of f32's), and a dtype the cache does not take is refused by name. The
# bench's group of 2 reports its two rooflines (weight bandwidth, multiply-add peak).
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
file(WRITE ${OUT}/tiny.json [=[{"model_type":"qwen2","hidden_size":64,"num_hidden_layers":2,
  "num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":96,"vocab_size":300,
  "max_position_embeddings":256,"rms_norm_eps":1e-6,"bos_token_id":290,"eos_token_id":291}]=])
execute_process(COMMAND ${CLI} synth --config ${OUT}/tiny.json --out ${OUT}/m
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "synth failed (${rc}): ${out} ${err}")
endif()
foreach(dtype f32 bf16)
  execute_process(COMMAND ${CLI} bench --model ${OUT}/m -p 8 -n 4 -r 1 -g 2 --kv-dtype ${dtype} --json
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "bench --kv-dtype ${dtype} failed (${rc}): ${err}")
  endif()
  string(JSON kv_${dtype} GET "${out}" kv_cache_bytes_per_token)
  string(JSON name GET "${out}" kv_dtype)
  if(NOT name STREQUAL dtype)
    message(FATAL_ERROR "bench --kv-dtype ${dtype} reports kv_dtype '${name}'")
  endif()
  foreach(field group_decode_tokens_per_s group_bandwidth_ratio group_gflops multiply_add_peak_gflops
                group_peak_ratio)
    string(JSON value GET "${out}" ${field})
    if(NOT value GREATER 0)
      message(FATAL_ERROR "bench -g 2 reports ${field} = ${value}: ${out}")
    endif()
  endforeach()
endforeach()
math(EXPR half "${kv_f32} / 2")
if(NOT kv_bf16 EQUAL half)
  message(FATAL_ERROR "KV bytes a token: f32 ${kv_f32}, bf16 ${kv_bf16}")
endif()
# The cache really is bf16: the first token's log-prob (attention over the prompt's cached,
# rounded keys and values) moves.
foreach(dtype f32 bf16)
  execute_process(COMMAND ${CLI} generate --model ${OUT}/m --prompt hi --max-tokens 4 --greedy
                          --kv-dtype ${dtype} --json
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "generate --kv-dtype ${dtype} failed (${rc}): ${err}")
  endif()
  string(JSON n LENGTH "${out}" completions 0 tokens)
  if(NOT n EQUAL 4)
    message(FATAL_ERROR "generate --kv-dtype ${dtype} gave ${n} tokens: ${out}")
  endif()
  string(JSON lp_${dtype} GET "${out}" completions 0 logprobs 0)
endforeach()
if(lp_f32 STREQUAL lp_bf16)
  message(FATAL_ERROR "the same first log-prob with an f32 and a bf16 cache: ${lp_f32}")
endif()
execute_process(COMMAND ${CLI} bench --model ${OUT}/m --kv-dtype f16
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
string(FIND "${err}" "f16" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "--kv-dtype f16: rc ${rc}, '${err}'")
endif()
file(REMOVE_RECURSE ${OUT})
