/* The C ABI end to end, compiled as C99 with -Wall -Wextra -pedantic -Werror, against a
 * small synthetic model (argv[1]). Every misuse must give a status, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reasonrt_c.h"

static int failures = 0;
#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: %s)\n", __FILE__,   \
              __LINE__, #cond, rrt_last_error());                                 \
      ++failures;                                                                 \
    }                                                                             \
  } while (0)

static int progress_calls = 0;
static int32_t count_progress(float f, void* user) {
  (void)user;
  (void)f;
  ++progress_calls;
  return 1;
}
static int32_t cancel_progress(float f, void* user) {
  (void)f;
  (void)user;
  return 0;
}

static int log_calls = 0;
static void on_log(int32_t level, const char* msg, size_t len, void* user) {
  (void)level;
  (void)msg;
  (void)len;
  (void)user;
  ++log_calls;
}

typedef struct {
  size_t thinking_bytes, answer_bytes;
  int tokens, finishes;
} Counts;
static void on_thinking(int32_t i, const char* t, size_t n, void* u) {
  (void)i;
  (void)t;
  ((Counts*)u)->thinking_bytes += n;
}
static void on_answer(int32_t i, const char* t, size_t n, void* u) {
  (void)i;
  (void)t;
  ((Counts*)u)->answer_bytes += n;
}
static void on_token(int32_t i, int32_t tok, float lp, int32_t ch, void* u) {
  (void)i;
  (void)tok;
  (void)lp;
  (void)ch;
  ((Counts*)u)->tokens++;
}
static void on_finish(int32_t i, int32_t reason, void* u) {
  (void)i;
  (void)reason;
  ((Counts*)u)->finishes++;
}

/* A long forward pass on a session, for the two-threads misuse check. */
typedef struct {
  rrt_session* session;
  rrt_status status;
  pthread_mutex_t mu; /* guards finished (C99 has no atomics) */
  int finished;
} BigForward;
static int big_forward_finished(BigForward* b) {
  int finished;
  pthread_mutex_lock(&b->mu);
  finished = b->finished;
  pthread_mutex_unlock(&b->mu);
  return finished;
}
static void* big_forward(void* arg) {
  BigForward* b = (BigForward*)arg;
  enum { kTokens = 3000 };
  static int32_t tokens[kTokens], pos[kTokens], seq[kTokens];
  static uint8_t want[kTokens];
  static float logits[512];
  size_t rows = 0;
  int i;
  for (i = 0; i < kTokens; ++i) {
    tokens[i] = 65 + i % 20;
    pos[i] = i;
    seq[i] = 0;
    want[i] = i == kTokens - 1;
  }
  b->status = rrt_session_forward(b->session, tokens, pos, seq, want, kTokens, logits, 512, &rows);
  pthread_mutex_lock(&b->mu);
  b->finished = 1;
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* A tiny deepseek_v3 (argv[2]): 16 experts, 4 per token, hidden 64, MoE layers 1 and 2. */
static void test_moe(const char* dir, const rrt_model* dense) {
  rrt_load_options lo;
  rrt_model* model = NULL;
  rrt_model_info info;
  rrt_session* session = NULL;
  float hidden[3 * 64], output[3 * 64];
  int32_t experts[3 * 4], experts2[3 * 4];
  float weights[3 * 4], weights2[3 * 4];
  int32_t tokens[5] = {9, 8, 7, 6, 5}, pos[5] = {0, 1, 2, 3, 4}, seq[5] = {0, 0, 0, 0, 0};
  uint8_t want[5] = {0, 0, 0, 0, 1};
  static float logits[300];
  size_t rows = 0, count = 0;
  int32_t layers[2] = {-1, -1}, n_layers = -1;
  int64_t load[2 * 16], n_experts = 0, counted = 0, sum;
  int32_t t_seq[10], t_pos[10], t_layer[10], t_exp[40];
  float t_w[40];
  int i;
  rrt_generate_options go;
  rrt_result* result = NULL;

  rrt_load_options_init(&lo);
  CHECK(rrt_model_load(dir, strlen(dir), &lo, &model) == RRT_OK);
  if (model == NULL) return;
  info.struct_size = sizeof(info);
  CHECK(rrt_model_get_info(model, &info) == RRT_OK);
  CHECK(strcmp(info.architecture, "deepseek_v3") == 0);
  CHECK(info.n_routed_experts == 16 && info.experts_per_token == 4);
  CHECK(info.active_parameters > 0 && info.active_parameters < info.parameters);

  for (i = 0; i < 3 * 64; ++i) hidden[i] = (float)sin(0.37 * i);
  CHECK(rrt_route_layer(model, 1, hidden, 3, experts, weights) == RRT_OK);
  CHECK(rrt_moe_layer_forward(model, 1, hidden, 3, output, experts2, weights2) == RRT_OK);
  CHECK(memcmp(experts, experts2, sizeof(experts)) == 0);
  CHECK(fabsf(weights[0] + weights[1] + weights[2] + weights[3] - 2.5f) < 1e-4f);
  for (i = 0; i < 3 * 64; ++i) CHECK(isfinite(output[i]));
  CHECK(rrt_moe_layer_forward(model, 1, hidden, 3, output, NULL, NULL) == RRT_OK);
  CHECK(rrt_moe_layer_forward(model, 0, hidden, 3, output, NULL, NULL) == RRT_INVALID_ARGUMENT); /* dense */
  CHECK(rrt_moe_layer_forward(dense, 0, hidden, 3, output, NULL, NULL) == RRT_MISUSE);
  CHECK(rrt_route_layer(model, 1, NULL, 3, experts, weights) == RRT_INVALID_ARGUMENT);

  /* A session's expert load and trace. */
  CHECK(rrt_session_create(model, 64, &session) == RRT_OK);
  CHECK(rrt_session_reset_routing(session, 1) == RRT_OK);
  CHECK(rrt_session_forward(session, tokens, pos, seq, want, 5, logits, 300, &rows) == RRT_OK);
  CHECK(rrt_session_expert_load(session, NULL, NULL, 0, &n_layers, &n_experts, &counted) == RRT_OUT_OF_RANGE);
  CHECK(n_layers == 2 && n_experts == 16 && counted == 5);
  CHECK(rrt_session_expert_load(session, layers, load, 32, &n_layers, &n_experts, &counted) == RRT_OK);
  CHECK(layers[0] == 1 && layers[1] == 2);
  for (sum = 0, i = 0; i < 16; ++i) sum += load[i];
  CHECK(sum == 5 * 4);
  CHECK(rrt_session_routing_trace(session, t_seq, t_pos, t_layer, t_exp, t_w, 4, &count) == RRT_OUT_OF_RANGE);
  CHECK(count == 10);
  CHECK(rrt_session_routing_trace(session, t_seq, t_pos, t_layer, t_exp, t_w, 10, &count) == RRT_OK);
  CHECK(t_layer[0] == 1 && t_pos[4] == 4 && t_layer[5] == 2 && t_seq[9] == 0);
  CHECK(rrt_session_reset_routing(session, 0) == RRT_OK);
  CHECK(rrt_session_expert_load(session, layers, load, 32, &n_layers, &n_experts, &counted) == RRT_OK);
  CHECK(counted == 0);
  rrt_session_destroy(session);

  /* A generation's expert load. */
  rrt_generate_options_init(&go);
  go.max_new_tokens = 4;
  go.routing_stats = 1;
  CHECK(rrt_generate(model, "[{\"role\": \"user\", \"content\": \"Hi\"}]", 35, &go, NULL, &result) == RRT_OK);
  if (result != NULL) {
    CHECK(rrt_result_expert_load(result, layers, load, 32, &n_layers, &n_experts, &counted) == RRT_OK);
    CHECK(n_layers == 2 && counted > 4);
    for (sum = 0, i = 0; i < 16; ++i) sum += load[16 + i];
    CHECK(sum == counted * 4);
    rrt_result_destroy(result);
  }
  rrt_model_destroy(model);
}

/* The GRPO calls: the vectors, a loss by hand, rewards, parsing, data, a rollout. */
static void test_grpo(const rrt_model* model) {
  rrt_grpo_advantage_options ao;
  rrt_grpo_loss_options lo;
  rrt_grpo_loss loss;
  float rewards[4] = {1, 0, 0, 1}, adv[4];
  float lp[8] = {-1, -2, 0, 0, -0.5f, -1.5f, -0.7f, -2.2f}, mask[8] = {1, 1, 0, 0, 1, 1, 1, 1}, a2[2] = {1, -1};
  float grad[8];
  const char* texts[2] = {"steps</think>\n\n\\boxed{\\frac{1}{2}}", "steps \\boxed{2}"};
  const char* golds[2] = {"0.5", "2"};
  float r[2];
  char answer[64];
  size_t n = 0;
  double v = 0;
  static char jsonl[4096];
  const char* prompts = "[[{\"role\": \"user\", \"content\": \"What's 2 + 2?\"}], "
                        "[{\"role\": \"user\", \"content\": \"What's 3 * 3?\"}]]";
  const char* rollout_golds[2] = {"4", "9"};
  rrt_generate_options go;
  rrt_rollout* ro = NULL;
  rrt_rollout_arrays arr;
  const char* text = NULL;
  int64_t i;

  rrt_grpo_advantage_options_init(&ao);
  ao.group_size = 4;
  CHECK(rrt_grpo_advantages(rewards, 1, 4, &ao, adv) == RRT_OK);
  CHECK(fabsf(adv[0] - 0.8658754f) < 1e-6f && fabsf(adv[1] + 0.8658754f) < 1e-6f);
  ao.scaling = RRT_SCALE_NONE;
  ao.baseline = RRT_BASELINE_RLOO;
  CHECK(rrt_grpo_advantages(rewards, 1, 4, &ao, adv) == RRT_OK);
  CHECK(fabsf(adv[0] - 2.0f / 3.0f) < 1e-6f);
  ao.group_size = 3;
  CHECK(rrt_grpo_advantages(rewards, 1, 4, &ao, adv) == RRT_INVALID_ARGUMENT);
  ao.struct_size = 1;
  CHECK(rrt_grpo_advantages(rewards, 1, 4, &ao, adv) == RRT_MISUSE);

  rrt_grpo_loss_options_init(&lo);
  loss.struct_size = sizeof(loss);
  CHECK(rrt_grpo_policy_loss(lp, lp, NULL, a2, mask, 2, 4, &lo, &loss, grad, NULL) == RRT_OK);
  CHECK(fabs(loss.loss) < 1e-7 && fabsf(grad[0] + 0.25f) < 1e-7f && fabsf(grad[4] - 0.125f) < 1e-7f);
  lo.aggregation = RRT_AGG_TOKEN_MEAN;
  CHECK(rrt_grpo_policy_loss(lp, lp, NULL, a2, mask, 2, 4, &lo, &loss, NULL, NULL) == RRT_OK);
  CHECK(fabs(loss.loss - 1.0 / 3.0) < 1e-6);
  lo.beta = 0.1;
  CHECK(rrt_grpo_policy_loss(lp, lp, NULL, a2, mask, 2, 4, &lo, &loss, NULL, NULL) == RRT_INVALID_ARGUMENT);

  CHECK(rrt_grpo_reward("accuracy", texts, golds, 2, 1, r) == RRT_OK);
  CHECK(r[0] == 1.0f && r[1] == 1.0f);
  CHECK(rrt_grpo_reward("format", texts, NULL, 2, 1, r) == RRT_OK);
  CHECK(r[0] == 1.0f && r[1] == 0.0f);
  CHECK(rrt_grpo_reward("bogus", texts, NULL, 2, 1, r) == RRT_INVALID_ARGUMENT);
  CHECK(rrt_grpo_extract_answer(texts[0], strlen(texts[0]), answer, sizeof(answer), &n) == RRT_OK);
  CHECK(strcmp(answer, "\\frac{1}{2}") == 0);
  CHECK(rrt_grpo_parse_number("1,234.5", 7, &v) == RRT_OK && v == 1234.5);
  CHECK(rrt_grpo_parse_number("one", 3, &v) == RRT_INVALID_ARGUMENT);
  CHECK(rrt_grpo_arithmetic_jsonl(3, 1, NULL, 0, &n) == RRT_OUT_OF_RANGE && n > 0);
  CHECK(rrt_grpo_arithmetic_jsonl(3, 1, jsonl, sizeof(jsonl), &n) == RRT_OK);
  CHECK(strstr(jsonl, "\"verifier_answer\"") != NULL && strstr(jsonl, "\\\\boxed{") != NULL);

  rrt_generate_options_init(&go);
  go.n = 4;
  go.max_new_tokens = 8;
  go.seed = 3;
  rrt_grpo_advantage_options_init(&ao);
  CHECK(rrt_grpo_rollout(model, prompts, strlen(prompts), rollout_golds, 2, "accuracy:1,tag_count:0.5,repetition:0.25",
                         &go, &ao, &ro) == RRT_OK);
  if (ro != NULL) {
    arr.struct_size = sizeof(arr);
    CHECK(rrt_rollout_get(ro, &arr) == RRT_OK);
    CHECK(arr.batch == 8 && arr.functions == 3 && arr.length > 0 && arr.prompt_index[4] == 1);
    for (i = 0; i < 2; ++i) {
      float sum = arr.advantages[i * 4] + arr.advantages[i * 4 + 1] + arr.advantages[i * 4 + 2] + arr.advantages[i * 4 + 3];
      CHECK(fabsf(sum) < 1e-5f);
    }
    CHECK(rrt_rollout_completion(ro, 7, &text, &n) == RRT_OK && text != NULL);
    CHECK(rrt_rollout_completion(ro, 8, &text, &n) == RRT_INVALID_ARGUMENT);
    rrt_rollout_destroy(ro);
  }
  CHECK(rrt_grpo_rollout(model, prompts, strlen(prompts), rollout_golds, 1, "accuracy", &go, &ao, &ro) == RRT_INVALID_ARGUMENT);
  CHECK(rrt_grpo_rollout(model, "[{}]", 4, rollout_golds, 1, "accuracy", &go, &ao, &ro) == RRT_INVALID_ARGUMENT);
  CHECK(rrt_grpo_rollout(model, prompts, strlen(prompts), rollout_golds, 2, "accuracy:x:y", &go, &ao, &ro) == RRT_INVALID_ARGUMENT);
}

int main(int argc, char** argv) {
  const char* dir;
  const char* msgs = "[{\"role\": \"user\", \"content\": \"What is 2+2?\"}]";
  rrt_load_options lo;
  rrt_model* model = NULL;
  rrt_model* dead = NULL;
  rrt_model_info info;
  int32_t ids[256];
  size_t n = 0;
  char text[1024];
  size_t len = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: capi_test MODEL_DIR\n");
    return 2;
  }
  dir = argv[1];

  CHECK(rrt_abi_version() == RRT_ABI_VERSION);
  CHECK(strlen(rrt_version()) > 0);
  CHECK(strcmp(rrt_status_name(RRT_MISUSE), "MISUSE") == 0);
  rrt_set_log_callback(on_log, NULL);

  /* Loading: misuse, a missing folder, cancellation, then for real with progress. */
  rrt_load_options_init(&lo);
  CHECK(rrt_model_load(NULL, 0, &lo, &model) == RRT_INVALID_ARGUMENT);
  CHECK(rrt_model_load("/nonexistent/model", 18, &lo, &model) == RRT_NOT_FOUND);
  CHECK(strlen(rrt_last_error()) > 0);
  CHECK(log_calls > 0);
  CHECK(model == NULL); /* out-parameters untouched on error */
  lo.struct_size = 3;
  CHECK(rrt_model_load(dir, strlen(dir), &lo, &model) == RRT_MISUSE);
  rrt_load_options_init(&lo);
  lo.progress = cancel_progress;
  CHECK(rrt_model_load(dir, strlen(dir), &lo, &model) == RRT_CANCELLED);
  lo.progress = count_progress;
  CHECK(rrt_model_load(dir, strlen(dir), &lo, &model) == RRT_OK);
  CHECK(model != NULL);
  CHECK(progress_calls >= 2);
  if (model == NULL) return 1;

  info.struct_size = sizeof(info);
  CHECK(rrt_model_get_info(model, &info) == RRT_OK);
  CHECK(strcmp(info.architecture, "qwen2") == 0);
  CHECK(info.vocab_size == 512 && info.num_layers == 2 && info.parameters > 0);
  CHECK(rrt_model_get_info(NULL, &info) == RRT_INVALID_ARGUMENT);
  info.struct_size = 1;
  CHECK(rrt_model_get_info(model, &info) == RRT_MISUSE);

  /* Tokenizer: a small buffer reports the size it needs. */
  CHECK(rrt_tokenize(model, "hello world", 11, 0, 0, ids, 2, &n) == RRT_OUT_OF_RANGE);
  CHECK(n == 11);
  CHECK(rrt_tokenize(model, "hello world", 11, 0, 0, ids, 256, &n) == RRT_OK);
  CHECK(rrt_detokenize(model, ids, n, 0, text, sizeof(text), &len) == RRT_OK);
  CHECK(len == 11 && strcmp(text, "hello world") == 0);
  CHECK(rrt_tokenize(model, "\xff", 1, 0, 0, ids, 256, &n) == RRT_INVALID_ARGUMENT); /* not UTF-8 */
  CHECK(rrt_tokenize(model, NULL, 3, 0, 0, ids, 256, &n) == RRT_INVALID_ARGUMENT);

  /* Chat template (the model ships none: the built-in R1 one). */
  CHECK(rrt_chat_render(model, msgs, strlen(msgs), NULL, text, sizeof(text), &len) == RRT_OK);
  CHECK(strstr(text, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n") != NULL);
  CHECK(rrt_chat_render(model, "[{", 2, NULL, text, sizeof(text), &len) == RRT_INVALID_ARGUMENT);
  {
    rrt_generate_options no_prompt;
    rrt_generate_options_init(&no_prompt);
    no_prompt.add_generation_prompt = 0;
    no_prompt.extra_json = "[not an object]";
    CHECK(rrt_chat_render(model, msgs, strlen(msgs), &no_prompt, text, sizeof(text), &len) == RRT_INVALID_ARGUMENT);
    no_prompt.extra_json = "{\"enable_thinking\": false}";
    CHECK(rrt_chat_render(model, msgs, strlen(msgs), &no_prompt, text, sizeof(text), &len) == RRT_OK);
    CHECK(strstr(text, "<think>") == NULL);
  }

  /* Sessions and logits. */
  {
    rrt_session* s = NULL;
    int32_t tokens[3] = {300, 65, 66}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    uint8_t want[3] = {0, 0, 1};
    float* logits = (float*)malloc(sizeof(float) * 512);
    size_t rows = 0;
    CHECK(rrt_session_create(model, 64, &s) == RRT_OK);
    CHECK(rrt_session_forward(s, tokens, pos, seq, want, 3, logits, 512, &rows) == RRT_OK);
    CHECK(rows == 1 && isfinite(logits[0]));
    pos[0] = 7; /* does not continue the sequence */
    CHECK(rrt_session_forward(s, tokens, pos, seq, want, 1, logits, 512, &rows) == RRT_INVALID_ARGUMENT);
    rrt_session_destroy(s);
    /* The same pass with its logits kept, then draws from them: greedy is the argmax of the
     * logits above; a banned argmax is not drawn but still scored. */
    {
      rrt_token_draw draws[2];
      rrt_drawn_token drawn[2];
      rrt_logit_edit ban;
      int32_t kept_rows[2] = {0, 0}, argmax = 0, v;
      pos[0] = 0;
      for (v = 1; v < 300; ++v) {
        if (logits[v] > logits[argmax]) argmax = v;
      }
      CHECK(rrt_session_create(model, 64, &s) == RRT_OK);
      CHECK(rrt_session_forward_keep(s, tokens, pos, seq, want, 3, &rows) == RRT_OK);
      CHECK(rows == 1);
      rrt_token_draw_init(&draws[0]);
      draws[0].greedy = 1;
      rrt_token_draw_init(&draws[1]);
      draws[1].greedy = 1;
      memset(&ban, 0, sizeof(ban));
      ban.token = argmax;
      ban.repetition_penalty = 1.0f;
      ban.banned = 1;
      draws[1].edits = &ban;
      draws[1].edit_count = 1;
      draws[1].score_token = argmax;
      CHECK(rrt_session_sample(s, kept_rows, draws, 2, drawn) == RRT_OK);
      CHECK(drawn[0].token == argmax && drawn[0].logprob < 0.0f);
      CHECK(drawn[1].token != argmax && drawn[1].token >= 0);
      CHECK(fabsf(drawn[1].score_logprob - drawn[0].logprob) < 1e-5f);
      kept_rows[1] = 1; /* only one row was kept */
      CHECK(rrt_session_sample(s, kept_rows, draws, 2, drawn) == RRT_INVALID_ARGUMENT);
      draws[0].struct_size = 8;
      CHECK(rrt_session_sample(s, kept_rows, draws, 1, drawn) == RRT_MISUSE);
      draws[0].struct_size = sizeof(rrt_token_draw);
      draws[0].greedy = 0;
      draws[0].temperature = 0.0f; /* neither greedy nor a temperature */
      CHECK(rrt_session_sample(s, kept_rows, draws, 1, drawn) == RRT_INVALID_ARGUMENT);
      rrt_session_destroy(s);
    }
    CHECK(rrt_session_forward(s, tokens, pos, seq, want, 1, logits, 512, &rows) == RRT_MISUSE); /* destroyed */
    /* Two threads on one session: the second call is refused while the first runs. */
    {
      BigForward b;
      pthread_t thread;
      int busy_seen = 0;
      int32_t bad_pos = 99999;
      CHECK(rrt_session_create(model, 4096, &s) == RRT_OK);
      b.session = s;
      b.status = RRT_INTERNAL;
      b.finished = 0;
      CHECK(pthread_mutex_init(&b.mu, NULL) == 0);
      CHECK(pthread_create(&thread, NULL, big_forward, &b) == 0);
      while (!big_forward_finished(&b)) {
        /* An invalid position: when the session is free this fails as INVALID_ARGUMENT. */
        rrt_status st = rrt_session_forward(s, tokens, &bad_pos, seq, want, 1, logits, 512, &rows);
        if (st == RRT_MISUSE) busy_seen = 1;
      }
      pthread_join(thread, NULL);
      pthread_mutex_destroy(&b.mu);
      CHECK(busy_seen || b.status == RRT_MISUSE);
      rrt_session_destroy(s);
    }
    rrt_session_destroy(s); /* twice: ignored */
    rrt_session_destroy(NULL);
    free(logits);
  }

  /* Blocking generation with callbacks, a group of 3, scoring. */
  {
    rrt_generate_options go;
    rrt_stream_callbacks cb;
    Counts counts = {0, 0, 0, 0};
    rrt_result* r = NULL;
    rrt_completion c;
    float scores[64];
    int32_t prompt[64];
    size_t prompt_n = 0;
    size_t i;
    const char* stops[1] = {"never-appears"};
    rrt_generate_options_init(&go);
    CHECK(fabsf(go.temperature - 0.6f) < 1e-6f && fabsf(go.top_p - 0.95f) < 1e-6f);
    go.max_new_tokens = 12;
    go.n = 3;
    go.seed = 7;
    go.stop = stops;
    go.stop_count = 1;
    memset(&cb, 0, sizeof(cb));
    cb.struct_size = sizeof(cb);
    cb.on_thinking = on_thinking;
    cb.on_answer = on_answer;
    cb.on_token = on_token;
    cb.on_finish = on_finish;
    cb.user = &counts;
    CHECK(rrt_generate(model, msgs, strlen(msgs), &go, &cb, &r) == RRT_OK);
    CHECK(rrt_result_count(r) == 3);
    CHECK(counts.finishes == 3 && counts.tokens > 0);
    c.struct_size = sizeof(c);
    CHECK(rrt_result_get(r, 0, &c) == RRT_OK);
    CHECK(c.token_count > 0 && c.token_count <= 12);
    CHECK(c.finish_reason == RRT_FINISH_MAX_TOKENS || c.finish_reason == RRT_FINISH_EOS);
    CHECK(rrt_result_get(r, 3, &c) == RRT_INVALID_ARGUMENT);
    /* Score the first completion after the same prompt: the recorded log-probs at T=0.6. */
    CHECK(rrt_chat_render(model, msgs, strlen(msgs), NULL, text, sizeof(text), &len) == RRT_OK);
    CHECK(rrt_tokenize(model, text, len, 1, 0, prompt, 64, &prompt_n) == RRT_OK);
    c.struct_size = sizeof(c);
    CHECK(rrt_result_get(r, 0, &c) == RRT_OK);
    CHECK(rrt_score(model, prompt, prompt_n, c.tokens, c.token_count, 0.6f, scores) == RRT_OK);
    for (i = 0; i < c.token_count; ++i) CHECK(fabsf(scores[i] - c.logprobs[i]) < 2e-2f);
    rrt_result_destroy(r);
    CHECK(rrt_result_count(r) == 0);
    CHECK(rrt_result_get(r, 0, &c) == RRT_MISUSE);
    go.n = 0;
    CHECK(rrt_generate(model, msgs, strlen(msgs), &go, NULL, &r) == RRT_INVALID_ARGUMENT);
    go.struct_size = 8;
    CHECK(rrt_generate(model, msgs, strlen(msgs), &go, NULL, &r) == RRT_MISUSE);
  }

  /* The KV cache's dtype: bf16 moves the first log-prob a little; an unknown one is refused. */
  {
    rrt_generate_options go;
    rrt_result* r = NULL;
    rrt_completion c;
    float first[2] = {0, 0};
    int k;
    rrt_generate_options_init(&go);
    CHECK(go.kv_dtype == RRT_KV_F32);
    go.greedy = 1;
    go.max_new_tokens = 2;
    for (k = 0; k < 2; ++k) {
      go.kv_dtype = k == 0 ? RRT_KV_F32 : RRT_KV_BF16;
      CHECK(rrt_generate(model, msgs, strlen(msgs), &go, NULL, &r) == RRT_OK);
      c.struct_size = sizeof(c);
      CHECK(rrt_result_get(r, 0, &c) == RRT_OK);
      CHECK(c.token_count > 0);
      if (c.token_count > 0) first[k] = c.logprobs[0];
      rrt_result_destroy(r);
      r = NULL;
    }
    CHECK(first[0] != first[1] && fabsf(first[0] - first[1]) < 0.05f);
    go.kv_dtype = 2;
    CHECK(rrt_generate(model, msgs, strlen(msgs), &go, NULL, &r) == RRT_INVALID_ARGUMENT);
    CHECK(strstr(rrt_last_error(), "kv_dtype 2") != NULL);
    CHECK(r == NULL);
  }

  /* Non-blocking: poll to the end; then start, cancel, and poll to the end. */
  {
    rrt_generate_options go;
    rrt_generation* g = NULL;
    rrt_event ev[16];
    size_t count = 0;
    int32_t done = 0;
    int polls = 0, tokens = 0, finish = -1, k;
    rrt_result* r = NULL;
    rrt_generate_options_init(&go);
    go.max_new_tokens = 10;
    CHECK(rrt_generation_start(model, msgs, strlen(msgs), &go, &g) == RRT_OK);
    CHECK(rrt_generation_result(g, &r) == RRT_MISUSE || r != NULL); /* not finished yet, most likely */
    if (r != NULL) rrt_result_destroy(r);
    r = NULL;
    while (!done && polls < 10000000) {
      CHECK(rrt_generation_poll(g, ev, 16, &count, &done) == RRT_OK);
      for (k = 0; k < (int)count; ++k) {
        if (ev[k].type == RRT_EVENT_TOKEN) ++tokens;
        if (ev[k].type == RRT_EVENT_FINISH) finish = ev[k].finish_reason;
      }
      ++polls;
    }
    CHECK(done == 1 && tokens > 0 && finish >= 0);
    CHECK(rrt_generation_result(g, &r) == RRT_OK);
    CHECK(rrt_result_count(r) == 1);
    rrt_result_destroy(r);
    rrt_generation_destroy(g);
    CHECK(rrt_generation_cancel(g) == RRT_MISUSE);

    go.max_new_tokens = 100000;
    go.max_thinking_tokens = -1;
    CHECK(rrt_generation_start(model, msgs, strlen(msgs), &go, &g) == RRT_OK);
    CHECK(rrt_generation_cancel(g) == RRT_OK);
    done = 0;
    finish = -1;
    polls = 0;
    while (!done && polls < 100000000) {
      CHECK(rrt_generation_poll(g, ev, 16, &count, &done) == RRT_OK);
      for (k = 0; k < (int)count; ++k) {
        if (ev[k].type == RRT_EVENT_FINISH) finish = ev[k].finish_reason;
      }
      ++polls;
    }
    CHECK(finish == RRT_FINISH_CANCELLED);
    rrt_generation_destroy(g);
    /* Destroying a running generation cancels it and returns promptly. */
    CHECK(rrt_generation_start(model, msgs, strlen(msgs), &go, &g) == RRT_OK);
    rrt_generation_destroy(g);
    CHECK(rrt_generation_start(model, "not json", 8, &go, &g) == RRT_INVALID_ARGUMENT);
  }

  /* The MoE router: 8 experts in 4 groups of 2, V3 rules. */
  {
    rrt_router_config rc;
    float logits[8] = {2.197f, -2.197f, 0.405f, 0.2007f, -1.386f, -0.847f, 0.847f, 0.619f};
    float bias[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t experts[2] = {-1, -1};
    float weights[2] = {0, 0};
    rrt_router_config_init(&rc);
    rc.n_routed_experts = 8;
    rc.num_experts_per_tok = 2;
    rc.n_group = 4;
    rc.topk_group = 2;
    CHECK(rrt_route_tokens(&rc, logits, 1, bias, 8, experts, weights) == RRT_OK);
    CHECK(experts[0] == 6 && experts[1] == 7); /* expert 0 is best, but its group is not */
    CHECK(fabsf(weights[0] + weights[1] - 2.5f) < 1e-4f);
    CHECK(rrt_route_tokens(&rc, logits, 1, NULL, 0, experts, weights) == RRT_INVALID_ARGUMENT);
    rc.struct_size = 4;
    CHECK(rrt_route_tokens(&rc, logits, 1, bias, 8, experts, weights) == RRT_MISUSE);
  }

  /* Weight updates need weights in memory: the mapped model refuses, a copy loaded in
   * memory takes a new head and its logits follow (all-zero head -> all-zero logits). */
  {
    static float zeros[512 * 64];
    const char* names[1] = {"lm_head.weight"};
    const float* values[1] = {zeros};
    size_t counts[1] = {512 * 64}, wrong[1] = {7};
    rrt_model* mem = NULL;
    rrt_session* s = NULL;
    int32_t tok = 65, pos = 0, seq = 0;
    uint8_t want = 1;
    static float logits[512];
    size_t rows = 0, i;
    CHECK(rrt_model_update_weights(model, names, values, counts, 1) == RRT_MISUSE); /* mapped: FailedPrecondition */
    rrt_load_options_init(&lo);
    lo.weights_in_memory = 1;
    CHECK(rrt_model_load(dir, strlen(dir), &lo, &mem) == RRT_OK);
    if (mem != NULL) {
      CHECK(rrt_model_update_weights(mem, names, values, wrong, 1) == RRT_INVALID_ARGUMENT);
      CHECK(rrt_model_update_weights(mem, names, values, counts, 1) == RRT_OK);
      CHECK(rrt_session_create(mem, 16, &s) == RRT_OK);
      CHECK(rrt_session_forward(s, &tok, &pos, &seq, &want, 1, logits, 512, &rows) == RRT_OK && rows == 1);
      for (i = 0; i < 512; ++i) CHECK(logits[i] == 0.0f);
      rrt_session_destroy(s);
      rrt_model_destroy(mem);
    }
  }
  if (argc > 2) test_moe(argv[2], model);
  test_grpo(model);

  rrt_model_destroy(model);
  dead = model;
  CHECK(rrt_model_get_info(dead, &info) != RRT_OK); /* use after destroy is detected */
  rrt_model_destroy(dead);
  rrt_model_destroy(NULL);
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  else printf("capi_test: all checks passed\n");
  return failures ? 1 : 0;
}
