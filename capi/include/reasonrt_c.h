/* reasonrt_c.h: the stable C ABI of reasonrt (C99).
 *
 * Basic usage:
 *
 *   rrt_load_options lo;
 *   rrt_load_options_init(&lo);
 *   rrt_model* model = NULL;
 *   if (rrt_model_load("/models/R1-Distill-Qwen-1.5B", 30, &lo, &model) != RRT_OK) {
 *     fprintf(stderr, "%s\n", rrt_last_error());
 *   }
 *   rrt_generate_options go;
 *   rrt_generate_options_init(&go);           // R1's recommended sampling
 *   const char* msgs = "[{\"role\": \"user\", \"content\": \"What is 17 * 23?\"}]";
 *   rrt_generation* gen = NULL;
 *   rrt_generation_start(model, msgs, strlen(msgs), &go, &gen);   // runs on a worker thread
 *   for (;;) {                                 // once per frame: never blocks
 *     rrt_event events[64];
 *     size_t n = 0;
 *     int32_t done = 0;
 *     rrt_generation_poll(gen, events, 64, &n, &done);
 *     for (size_t i = 0; i < n; ++i) { ... events[i].channel, events[i].text ... }
 *     if (done) break;
 *   }
 *   rrt_generation_destroy(gen);
 *   rrt_model_destroy(model);
 *
 * Conventions: opaque handles; every function returns an rrt_status (RRT_OK is 0) and on
 * error leaves out-parameters untouched and sets a thread-local message (rrt_last_error);
 * option structs start with struct_size and are filled by their _init function; strings
 * are UTF-8 with explicit lengths; destroy functions accept NULL. No function aborts the
 * host or lets an exception out; misuse (NULL or destroyed handles, a wrong struct_size,
 * two threads on one session) is a status code. Handles of a model may be used from
 * several threads at once, except a session, which is one thread's at a time. A field
 * added to a struct after the first release defaults to zero (what _init leaves there).
 */
#ifndef REASONRT_C_H_
#define REASONRT_C_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#if defined(RRT_BUILDING_LIBRARY)
#define RRT_C_API __declspec(dllexport)
#else
#define RRT_C_API __declspec(dllimport)
#endif
#else
#define RRT_C_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define RRT_ABI_VERSION 1

typedef enum rrt_status {
  RRT_OK = 0,
  RRT_INVALID_ARGUMENT = 1,   /* bad input: a NULL pointer, malformed JSON, a bad option */
  RRT_NOT_FOUND = 2,          /* a missing file */
  RRT_OUT_OF_RANGE = 3,       /* an output buffer too small (the needed size is reported) */
  RRT_RESOURCE_EXHAUSTED = 4, /* out of memory, context or cache */
  RRT_CANCELLED = 5,
  RRT_UNIMPLEMENTED = 6,      /* a model or feature this build does not run */
  RRT_DATA_LOSS = 7,          /* a corrupt file */
  RRT_MISUSE = 8,             /* a destroyed handle, a wrong struct_size, a busy session */
  RRT_INTERNAL = 9
} rrt_status;

/* The message of the last error on this thread ("" if none); valid until the next call. */
RRT_C_API const char* rrt_last_error(void);
RRT_C_API const char* rrt_status_name(rrt_status status);
RRT_C_API const char* rrt_version(void);     /* "0.1.0" */
RRT_C_API uint32_t rrt_abi_version(void);    /* RRT_ABI_VERSION of the library */

/* Log messages of the library (level 0 debug .. 3 error); NULL turns them off. */
typedef void (*rrt_log_fn)(int32_t level, const char* message, size_t length, void* user);
RRT_C_API void rrt_set_log_callback(rrt_log_fn fn, void* user);

/* --- models ------------------------------------------------------------------------ */

typedef struct rrt_model rrt_model; /* weights, tokenizer and chat template of a folder */

typedef struct rrt_load_options {
  size_t struct_size;
  const char* backend;        /* "auto" (default), "cpu", "reference", "cuda" (with a GPU) */
  int32_t num_threads;        /* 0: one per core */
  int32_t weights_in_memory;  /* read the files into memory instead of mapping them */
  int32_t exact_activations;
  /* Called on the loading thread with the fraction read; return 0 to cancel. May be NULL. */
  int32_t (*progress)(float fraction, void* user);
  void* progress_user;
} rrt_load_options;
RRT_C_API void rrt_load_options_init(rrt_load_options* options);

RRT_C_API rrt_status rrt_model_load(const char* path, size_t path_length, const rrt_load_options* options,
                                    rrt_model** out);
RRT_C_API void rrt_model_destroy(rrt_model* model);

typedef struct rrt_model_info {
  size_t struct_size;
  char architecture[32]; /* "qwen2", "llama", ... */
  int64_t vocab_size, hidden_size, num_layers, max_positions;
  int64_t parameters;
  /* MoE models (0 for dense ones): routed experts, experts per token, parameters a token uses. */
  int64_t n_routed_experts, experts_per_token, active_parameters;
} rrt_model_info;
RRT_C_API rrt_status rrt_model_get_info(const rrt_model* model, rrt_model_info* info);

/* Replaces `count` weights in place (a trainer syncing its policy): names[i] a checkpoint
 * tensor, values[i] its new f32 values (value_counts[i] of them, the tensor's size),
 * converted to the stored dtype. Needs weights_in_memory; all are checked before any is
 * written; forward passes on other threads see old or new weights, never a mix. */
RRT_C_API rrt_status rrt_model_update_weights(const rrt_model* model, const char* const* names,
                                              const float* const* values, const size_t* value_counts,
                                              size_t count);

/* --- tokenizer and chat template ---------------------------------------------------- */

/* Token ids of `text`. parse_special: recognise special tokens written in the text.
 * *count is set to the number of ids even when `capacity` is too small (then
 * RRT_OUT_OF_RANGE and nothing is written). */
RRT_C_API rrt_status rrt_tokenize(const rrt_model* model, const char* text, size_t length, int32_t parse_special,
                                  int32_t add_special, int32_t* ids, size_t capacity, size_t* count);
/* UTF-8 text of ids; *length as for rrt_tokenize (no terminating zero is counted or needed;
 * one is written when there is room). */
RRT_C_API rrt_status rrt_detokenize(const rrt_model* model, const int32_t* ids, size_t count,
                                    int32_t skip_special, char* text, size_t capacity, size_t* length);
/* The prompt the model's chat template makes of a JSON array of messages; the template
 * options (add_generation_prompt, tools_json, extra_json) come from `options` (NULL: the
 * defaults of rrt_generate_options_init). Declared after rrt_generate_options below. */
struct rrt_generate_options;
RRT_C_API rrt_status rrt_chat_render(const rrt_model* model, const char* messages_json, size_t length,
                                     const struct rrt_generate_options* options, char* text, size_t capacity,
                                     size_t* text_length);

/* --- sessions: KV cache and logits ---------------------------------------------------- */

typedef struct rrt_session rrt_session;
RRT_C_API rrt_status rrt_session_create(const rrt_model* model, int64_t max_tokens, rrt_session** out);
RRT_C_API void rrt_session_destroy(rrt_session* session);
/* Runs `count` tokens (sequence seq_ids[i] at positions[i]); logits rows of those with
 * want_logits[i] != 0 go to `logits` ([rows, vocab] floats, capacity in floats). */
RRT_C_API rrt_status rrt_session_forward(rrt_session* session, const int32_t* tokens, const int32_t* positions,
                                         const int32_t* seq_ids, const uint8_t* want_logits, size_t count,
                                         float* logits, size_t capacity, size_t* rows);

/* Draws where the logits are (on a GPU only the tokens come back): a forward pass that
 * keeps its logits rows (*rows: how many, those with want_logits[i] != 0, in order) until
 * the session's next forward pass, then draws from them. */
RRT_C_API rrt_status rrt_session_forward_keep(rrt_session* session, const int32_t* tokens,
                                              const int32_t* positions, const int32_t* seq_ids,
                                              const uint8_t* want_logits, size_t count,
                                              size_t* rows);

/* A change to one token's logit before a draw, in this order: + bias (finite or -inf),
 * then the repetition penalty (divides a positive logit, multiplies a negative one; 1:
 * none), then + offset (presence/frequency penalties as -(presence + frequency * count));
 * banned != 0: the token gets no probability. */
typedef struct rrt_logit_edit {
  int32_t token;
  float bias;
  float repetition_penalty;
  float offset;
  int32_t banned;
} rrt_logit_edit;

/* How a kept row becomes a token: the row edited (edits in strictly increasing token
 * order), divided by the temperature; top_k keeps the k best (0: off), top_p the best of
 * those until their mass reaches top_p (1: off), min_p those with p >= min_p * p_max (0:
 * off); the token is the first kept one, in id order, where the kept mass summed so far
 * exceeds uniform (in [0, 1): the caller's random number) times their total. greedy: the
 * edited row's argmax. draw == 0: only score_token's log-prob. */
typedef struct rrt_token_draw {
  size_t struct_size;
  int32_t draw; /* 1 (rrt_token_draw_init) */
  int32_t greedy;
  float temperature; /* 1; in [0.001, 100] unless greedy */
  int32_t top_k;
  float top_p; /* 1 */
  float min_p;
  double uniform;
  const rrt_logit_edit* edits;
  size_t edit_count;
  int32_t score_token; /* -1: none */
} rrt_token_draw;
RRT_C_API void rrt_token_draw_init(rrt_token_draw* draw);

/* Log-probs are of the row as given (not edited) divided by the temperature (1 greedy). */
typedef struct rrt_drawn_token {
  int32_t token; /* -1 when draw was 0 */
  float logprob;
  float sampled_logprob; /* its share of the kept mass, as a log (0 greedy) */
  float score_logprob;   /* score_token's */
} rrt_drawn_token;

/* out[i] from kept row rows[i] as draws[i] directs, for i < count. */
RRT_C_API rrt_status rrt_session_sample(rrt_session* session, const int32_t* rows,
                                        const rrt_token_draw* draws, size_t count,
                                        rrt_drawn_token* out);

/* --- generation ---------------------------------------------------------------------- */

enum { RRT_CHANNEL_THINKING = 0, RRT_CHANNEL_ANSWER = 1 };
enum {
  RRT_FINISH_EOS = 0, RRT_FINISH_STOP = 1, RRT_FINISH_MAX_TOKENS = 2, RRT_FINISH_CANCELLED = 3,
  RRT_FINISH_CONTEXT_FULL = 4
};

/* The KV cache's dtype: bf16 halves the memory of long thinking (log-probs move a little). */
enum { RRT_KV_F32 = 0, RRT_KV_BF16 = 1 };

typedef struct rrt_generate_options {
  size_t struct_size;
  int32_t greedy;
  float temperature, top_p, min_p, repetition_penalty;
  int32_t top_k;
  uint64_t seed;
  int32_t max_new_tokens;
  int32_t n;                   /* completions of the prompt (a group) */
  int32_t max_thinking_tokens; /* -1: none */
  int32_t min_thinking_tokens;
  const char* const* stop;     /* stop strings (zero-terminated), stop_count of them */
  size_t stop_count;
  int32_t add_generation_prompt;
  float presence_penalty, frequency_penalty;
  int32_t first_index;         /* completion i draws from (seed, first_index + i) */
  const char* tools_json;      /* chat template: tools as a JSON array, or NULL */
  const char* extra_json;      /* chat template: more variables as a JSON object, or NULL */
  int32_t routing_stats;       /* MoE models: count expert load (rrt_result_expert_load) */
  int32_t kv_dtype;            /* the KV cache's: RRT_KV_F32 (0, default), RRT_KV_BF16 (half) */
} rrt_generate_options;
/* R1's recommended sampling (temperature 0.6, top-p 0.95), 1024 new tokens, n = 1. */
RRT_C_API void rrt_generate_options_init(rrt_generate_options* options);

typedef struct rrt_stream_callbacks {
  size_t struct_size;
  void (*on_thinking)(int32_t index, const char* text, size_t length, void* user);
  void (*on_answer)(int32_t index, const char* text, size_t length, void* user);
  void (*on_token)(int32_t index, int32_t token, float logprob, int32_t channel, void* user);
  void (*on_finish)(int32_t index, int32_t finish_reason, void* user);
  void* user;
} rrt_stream_callbacks;

typedef struct rrt_result rrt_result;

typedef struct rrt_completion {
  size_t struct_size;
  const char* thinking; size_t thinking_length;
  const char* answer; size_t answer_length;
  const int32_t* tokens; const float* logprobs; const uint8_t* channels; size_t token_count;
  int32_t finish_reason;
  int32_t thinking_tokens;
} rrt_completion;

/* Generates on the calling thread (callbacks, which may be NULL, run on it too). */
RRT_C_API rrt_status rrt_generate(const rrt_model* model, const char* messages_json, size_t length,
                                  const rrt_generate_options* options, const rrt_stream_callbacks* callbacks,
                                  rrt_result** out);
RRT_C_API int32_t rrt_result_count(const rrt_result* result);
/* Pointers stay valid until rrt_result_destroy. */
RRT_C_API rrt_status rrt_result_get(const rrt_result* result, int32_t index, rrt_completion* completion);
RRT_C_API void rrt_result_destroy(rrt_result* result);

/* Non-blocking generation for frame-driven hosts: it runs on a worker thread; the host
 * polls for events and never waits (no callback runs on its thread). */
typedef struct rrt_generation rrt_generation;
enum { RRT_EVENT_THINKING = 0, RRT_EVENT_ANSWER = 1, RRT_EVENT_TOKEN = 2, RRT_EVENT_FINISH = 3 };
typedef struct rrt_event {
  int32_t type;
  int32_t index;          /* the completion */
  const char* text;       /* THINKING, ANSWER: valid until the next poll or destroy */
  size_t text_length;
  int32_t token;          /* TOKEN */
  float logprob;          /* TOKEN */
  int32_t channel;        /* TOKEN */
  int32_t finish_reason;  /* FINISH */
} rrt_event;

RRT_C_API rrt_status rrt_generation_start(const rrt_model* model, const char* messages_json, size_t length,
                                          const rrt_generate_options* options, rrt_generation** out);
/* Copies up to `capacity` waiting events; *done becomes 1 once the generation has ended
 * and every event was taken. Returns the generation's error, if it failed, once done. */
RRT_C_API rrt_status rrt_generation_poll(rrt_generation* generation, rrt_event* events, size_t capacity,
                                         size_t* count, int32_t* done);
/* Asks the generation to stop; it ends within one decode step. Never blocks. */
RRT_C_API rrt_status rrt_generation_cancel(rrt_generation* generation);
/* The result once done (RRT_MISUSE before); the caller destroys it. */
RRT_C_API rrt_status rrt_generation_result(rrt_generation* generation, rrt_result** out);
/* Cancels if still running and waits for the worker (at most one decode step). */
RRT_C_API void rrt_generation_destroy(rrt_generation* generation);

/* --- scoring ----------------------------------------------------------------------------- */

/* log_softmax(logits / temperature)[token] of each completion token after the prompt. */
RRT_C_API rrt_status rrt_score(const rrt_model* model, const int32_t* prompt, size_t prompt_count,
                               const int32_t* completion, size_t completion_count, float temperature,
                               float* logprobs);

/* --- Mixture-of-Experts routing (see reasonrt/moe.h for the rules) ---------------------- */

enum { RRT_SCORING_SOFTMAX = 0, RRT_SCORING_SIGMOID = 1 };
enum { RRT_TOPK_GREEDY = 0, RRT_TOPK_GROUP_LIMITED_GREEDY = 1, RRT_TOPK_NOAUX_TC = 2 };
typedef struct rrt_router_config {
  size_t struct_size;
  int64_t n_routed_experts, num_experts_per_tok, n_group, topk_group;
  int32_t scoring_func;  /* RRT_SCORING_* */
  int32_t topk_method;   /* RRT_TOPK_* */
  int32_t norm_topk_prob;
  int32_t always_scale;  /* 1: V3 (scale after normalising); 0: V2 */
  double routed_scaling_factor;
} rrt_router_config;
/* DeepSeek-V3/R1's router shape: 256 experts, top 8, 8 groups, top 4, sigmoid, noaux_tc. */
RRT_C_API void rrt_router_config_init(rrt_router_config* config);
/* Routes `tokens` rows of gate logits [tokens, n_routed_experts]; `bias` (noaux_tc only,
 * else NULL with bias_count 0). experts/weights: [tokens, num_experts_per_tok]. */
RRT_C_API rrt_status rrt_route_tokens(const rrt_router_config* config, const float* logits, int64_t tokens,
                                      const float* bias, size_t bias_count, int32_t* experts, float* weights);

/* A loaded MoE model's decoder layer `layer`, applied to `tokens` rows of `hidden`
 * [tokens, hidden_size] (the layer's MoE input: its post-attention RMSNorm output).
 * rrt_route_layer: the router's experts/weights [tokens, experts_per_token].
 * rrt_moe_layer_forward: the block's output [tokens, hidden_size] (routed experts weighted,
 * plus shared experts); experts and weights may be NULL. RRT_MISUSE for dense models,
 * RRT_INVALID_ARGUMENT for a layer without routed experts. */
RRT_C_API rrt_status rrt_route_layer(const rrt_model* model, int32_t layer, const float* hidden, int64_t tokens,
                                     int32_t* experts, float* weights);
RRT_C_API rrt_status rrt_moe_layer_forward(const rrt_model* model, int32_t layer, const float* hidden,
                                           int64_t tokens, float* output, int32_t* experts, float* weights);

/* Expert load: *n_layers MoE layers (0 for dense models) and *n_experts routed experts are
 * always set, with *tokens (tokens that went through the MoE layers); `layers` [n_layers]
 * (their decoder-layer ids) and `load` [n_layers * n_experts] (tokens per expert) are
 * filled when `capacity` (elements of load) suffices, else RRT_OUT_OF_RANGE. Both may be
 * NULL with capacity 0 to ask for the sizes. */
RRT_C_API rrt_status rrt_session_expert_load(rrt_session* session, int32_t* layers, int64_t* load,
                                             size_t capacity, int32_t* n_layers, int64_t* n_experts,
                                             int64_t* tokens);
/* Clears the session's statistics; trace != 0 records every token's routing from now on. */
RRT_C_API rrt_status rrt_session_reset_routing(rrt_session* session, int32_t trace);
/* The trace since the last reset: *count entries (token positions[i] of sequence
 * seq_ids[i] at decoder layer layers[i]; experts/weights [count, experts_per_token]),
 * copied when `capacity` (entries) suffices, else RRT_OUT_OF_RANGE with *count set. */
RRT_C_API rrt_status rrt_session_routing_trace(rrt_session* session, int32_t* seq_ids, int32_t* positions,
                                               int32_t* layers, int32_t* experts, float* weights,
                                               size_t capacity, size_t* count);
/* The expert load of a generation run with rrt_generate_options.routing_stats (same
 * contract as rrt_session_expert_load). */
RRT_C_API rrt_status rrt_result_expert_load(const rrt_result* result, int32_t* layers, int64_t* load,
                                            size_t capacity, int32_t* n_layers, int64_t* n_experts,
                                            int64_t* tokens);

/* --- GRPO: advantages, policy loss, rule-based rewards, data, rollouts (reasonrt/grpo.h) -- */

enum { RRT_SCALE_GROUP = 0, RRT_SCALE_BATCH = 1, RRT_SCALE_NONE = 2 };
enum { RRT_BASELINE_MEAN = 0, RRT_BASELINE_RLOO = 1 };
enum { RRT_COMBINE_SUM = 0, RRT_COMBINE_NORMALIZE = 1 };
typedef struct rrt_grpo_advantage_options {
  size_t struct_size;
  int64_t group_size;
  int32_t scaling;     /* RRT_SCALE_* */
  int32_t baseline;    /* RRT_BASELINE_* */
  int32_t unbiased_std;
  double eps;
  int32_t combination; /* RRT_COMBINE_* */
  const double* weights; /* per reward function, or NULL for all 1 */
  size_t weight_count;
} rrt_grpo_advantage_options;
/* Group of 8, group scaling, mean baseline, unbiased std, eps 1e-4, sum then normalise. */
RRT_C_API void rrt_grpo_advantage_options_init(rrt_grpo_advantage_options* options);
/* rewards [functions, n] (NaN: missing) -> advantages [n]. */
RRT_C_API rrt_status rrt_grpo_advantages(const float* rewards, int64_t functions, int64_t n,
                                         const rrt_grpo_advantage_options* options, float* advantages);

enum { RRT_LEVEL_TOKEN = 0, RRT_LEVEL_SEQUENCE = 1 };
enum { RRT_AGG_GRPO = 0, RRT_AGG_TOKEN_MEAN = 1, RRT_AGG_DR_GRPO = 2 };
typedef struct rrt_grpo_loss_options {
  size_t struct_size;
  double eps_low, eps_high, dual_clip, beta;
  int32_t level;        /* RRT_LEVEL_* */
  int32_t aggregation;  /* RRT_AGG_* */
  int64_t max_length;   /* RRT_AGG_DR_GRPO's constant; 0: T */
} rrt_grpo_loss_options;
/* eps 0.2 / 0.2, no dual clip, beta 0, token level, GRPO aggregation. */
RRT_C_API void rrt_grpo_loss_options_init(rrt_grpo_loss_options* options);
typedef struct rrt_grpo_loss {
  size_t struct_size;
  double loss, kl_mean, clip_fraction;
} rrt_grpo_loss;
/* [B, T] new/old/ref log-probs and mask, advantages [B]; ref may be NULL when beta is 0;
 * grad and per_token_loss ([B, T]) may be NULL. */
RRT_C_API rrt_status rrt_grpo_policy_loss(const float* new_logprobs, const float* old_logprobs,
                                          const float* ref_logprobs, const float* advantages, const float* mask,
                                          int64_t batch, int64_t length, const rrt_grpo_loss_options* options,
                                          rrt_grpo_loss* out, float* grad, float* per_token_loss);

/* A built-in reward over `count` completions: "accuracy" (golds needed), "format",
 * "tag_count", "repetition", "language:latin" (or han, cyrillic, arabic, greek, hangul, kana,
 * devanagari). golds may be NULL for the others. rewards[count]; NaN is "no reward". */
RRT_C_API rrt_status rrt_grpo_reward(const char* name, const char* const* completions, const char* const* golds,
                                     size_t count, int32_t prompt_opens_thinking, float* rewards);
/* The final answer (last \boxed{} after </think>), copied like other texts. */
RRT_C_API rrt_status rrt_grpo_extract_answer(const char* completion, size_t length, char* answer, size_t capacity,
                                             size_t* answer_length);
/* The numeric value of an answer; RRT_INVALID_ARGUMENT if it is not a number. */
RRT_C_API rrt_status rrt_grpo_parse_number(const char* text, size_t length, double* value);
/* `count` arithmetic problems from `seed` as JSON lines of question, expression, answer,
 * verifier_answer and completion (the R1-format SFT target). */
RRT_C_API rrt_status rrt_grpo_arithmetic_jsonl(int64_t count, uint64_t seed, char* text, size_t capacity,
                                               size_t* text_length);

/* A rollout: for each prompt (messages_json: a JSON array of message arrays) options->n
 * completions, the built-in rewards `reward_spec` ("accuracy:1,format:0.5") against
 * golds[prompt], and the group advantages. */
typedef struct rrt_rollout rrt_rollout;
RRT_C_API rrt_status rrt_grpo_rollout(const rrt_model* model, const char* messages_json, size_t length,
                                      const char* const* golds, size_t gold_count, const char* reward_spec,
                                      const rrt_generate_options* options,
                                      const rrt_grpo_advantage_options* advantage_options, rrt_rollout** out);
typedef struct rrt_rollout_arrays {
  size_t struct_size;
  int64_t batch, length, functions;  /* B, T, reward functions */
  const int32_t* prompt_index;       /* [B] */
  const int32_t* completion_tokens;  /* [B, T], -1 padded */
  const float* old_logprobs;         /* [B, T] */
  const float* mask;                 /* [B, T] */
  const uint8_t* truncated;          /* [B] */
  const float* rewards;              /* [functions, B] */
  const float* advantages;           /* [B] */
} rrt_rollout_arrays;
/* Pointers stay valid until rrt_rollout_destroy. */
RRT_C_API rrt_status rrt_rollout_get(const rrt_rollout* rollout, rrt_rollout_arrays* arrays);
RRT_C_API rrt_status rrt_rollout_completion(const rrt_rollout* rollout, int64_t row, const char** text,
                                            size_t* length);
RRT_C_API void rrt_rollout_destroy(rrt_rollout* rollout);

#ifdef __cplusplus
}
#endif

#endif /* REASONRT_C_H_ */
