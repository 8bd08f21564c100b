// examples/cli/commands.h: the subcommands of the reasonrt command-line tool.
#ifndef REASONRT_EXAMPLES_CLI_COMMANDS_H_
#define REASONRT_EXAMPLES_CLI_COMMANDS_H_

#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "reasonrt/generate.h"

namespace reasonrt::cli {

// Prints "reasonrt: <message>" to stderr and returns the exit code 1.
inline int Fail(const absl::Status& status) {
  std::fprintf(stderr, "reasonrt: %s\n", std::string(status.message()).c_str());
  return 1;
}

int RunInspect(const std::string& dir);

struct LogitsArgs {
  std::string model;
  std::string tokens;  // comma-separated ids
  std::string out;     // .npy path
  std::string backend = "auto";
  int threads = 0;
  bool decode = false;  // one token per forward call instead of one prefill
  bool exact = false;   // LoadOptions::exact_activations
  std::string routing_out;  // MoE models: expert ids [moe_layers, T, k] as .npy
};
int RunLogits(const LogitsArgs& args);

struct BenchArgs {
  std::string model;
  int prompt = 128;
  int decode = 64;
  int depth = 0;  // tokens already in the context when decoding starts
  int group = 1;  // > 1: also decode a group of this many sequences sharing a prompt
  int threads = 0;
  int reps = 3;
  std::string backend = "auto";
  bool json = false;
  bool in_memory = false;
  bool exact = false;
  std::string kv_dtype = "f32";  // the KV cache's dtype: f32 or bf16
  bool sample = false;           // decode with R1's sampling settings instead of greedy
};
int RunBench(const BenchArgs& args);

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  bool parse_special = false;
  bool add_special = false;
  bool json = false;
  bool batch = false;  // --file is a JSON array of strings; prints a JSON array of id arrays
};
int RunTokenize(const TokenizeArgs& args);
int RunDetokenize(const std::string& model, const std::string& ids, bool skip_special);

struct ChatTemplateArgs {
  std::string model;          // model folder: its template and special tokens
  std::string template_file;  // a .jinja file instead of the model's template
  bool builtin_r1 = false;    // reasonrt's built-in R1 template
  std::string messages;       // JSON file: an array of messages (or of cases with --batch)
  std::string tools;          // JSON file: an array of tool schemas
  std::string extra;          // JSON object of extra template variables
  bool no_generation_prompt = false;
  bool json = false;   // print {"text", "template_ranges"}
  bool ids = false;    // print the prompt's token ids (special tokens only from the template)
  bool batch = false;  // --messages holds [{messages, tools, add_generation_prompt, extra}, ...]
  bool source = false;  // print the template's Jinja source instead of rendering
};
int RunChatTemplate(const ChatTemplateArgs& args);

struct GenerateArgs {
  std::string model;
  std::string prompt;
  std::string system;
  bool raw = false;  // the prompt as text, no chat template
  int n = 1;
  int max_tokens = 1024;
  float temperature = -1;  // -1: R1's recommended 0.6
  float top_p = -1;        // -1: R1's recommended 0.95
  int top_k = 0;
  float min_p = 0;
  float repetition_penalty = 1;
  int max_thinking = -1;
  int min_thinking = 0;
  uint64_t seed = 0;
  int first_index = 0;
  bool greedy = false;
  std::vector<std::string> stop;
  bool json = false;
  int threads = 0;
  std::string backend = "auto";
  bool exact = false;
  std::string kv_dtype = "f32";  // the KV cache's dtype: f32 or bf16
  std::string gold;  // the expected answer: report whether each completion's answer is right
};
int RunGenerate(const GenerateArgs& args);
// The generation options and loaded generator the generation flags describe.
GenerateOptions OptionsFrom(const GenerateArgs& args);
absl::StatusOr<std::unique_ptr<Generator>> LoadGenerator(const GenerateArgs& args, bool show_progress);

struct ArithmeticArgs {
  int64_t count = 100;
  uint64_t seed = 0;
  int min_operands = 2;
  int max_operands = 4;
  int64_t max_value = 100;
  bool column_steps = false;  // + and - spelled out digit by digit
  bool restate = false;       // the expression as it stands after each step
  bool sft = false;           // R1-format SFT chat records instead of problem records
};
int RunArithmetic(const ArithmeticArgs& args);

struct RolloutArgs {
  GenerateArgs generate;  // model, -n, sampling
  std::string problems;   // JSON lines with question and verifier_answer
  int64_t limit = 0;      // first N problems (0: all)
  std::string rewards = "accuracy:1,format:0.5";
  std::string accepted;   // write the accepted completions here (rejection sampling)
  double threshold = 1.0;
};
int RunRollout(const RolloutArgs& args);

// `reasonrt demo`: makes up an arithmetic question (Mini-R1's training distribution: 2-3
// operands in [0, 100], + - x, parentheses), streams the model's thinking and answer, and
// says whether the boxed answer is right.
struct DemoArgs {
  GenerateArgs generate;            // model, sampling flags (greedy unless --sample)
  int64_t question_seed = -1;       // -1: a fresh question each run
  int max_operands = 3;
  bool sample = false;              // R1's sampling (T 0.6, top-p 0.95) instead of greedy
};
int RunDemo(DemoArgs args);
int RunChat(const GenerateArgs& args);

}  // namespace reasonrt::cli

#endif  // REASONRT_EXAMPLES_CLI_COMMANDS_H_
