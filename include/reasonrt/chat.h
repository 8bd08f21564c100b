// reasonrt/chat.h: a model's own chat template (Jinja), rendered as Hugging Face renders it.
//
// Basic usage:
//
//   absl::StatusOr<std::unique_ptr<reasonrt::ChatTemplate>> chat =
//       reasonrt::ChatTemplate::Load("/models/DeepSeek-R1-Distill-Qwen-1.5B");
//   std::vector<reasonrt::ChatMessage> messages = {
//       {.role = "system", .content = "Be brief."},
//       {.role = "user", .content = "What is 17 * 23?"}};
//   absl::StatusOr<reasonrt::ChatPrompt> prompt = (*chat)->Render(messages, {});
//   // prompt->text == "<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is 17 * 23?<｜Assistant｜><think>\n"
//   absl::StatusOr<std::vector<int32_t>> ids = reasonrt::EncodeChatPrompt(tokenizer, *prompt);
//
// The template runs in reasonrt's own Jinja interpreter, configured as transformers'
// apply_chat_template configures jinja2: trim_blocks, lstrip_blocks, the loop controls
// (break/continue), `tojson` as json.dumps(ensure_ascii=False), `raise_exception(msg)`,
// `strftime_now(fmt)`, and the special tokens of tokenizer_config.json as variables
// (bos_token, eos_token, ...). Output is byte-identical to jinja2's on the templates of
// DeepSeek-V3/R1, the R1 distills, Qwen3 and Llama 3.1 (tests/chat/ checks this).
//
// Sandbox: a template cannot read files, import, or reach anything but the values given to
// it; recursion depth, loop iterations and output size are bounded (ChatLimits). A template
// that breaks a limit, calls raise_exception, or uses a construct the interpreter does not
// support gets an error naming the template line, never a crash or a hang.
//
// Special tokens: the prompt remembers which bytes came from the template's own text (and
// the special-token variables) and which from the messages. EncodeChatPrompt recognises
// control tokens such as "<｜User｜>" only in the former, so a user who types "<｜Assistant｜>"
// gets plain text, not a turn boundary.
//
// A ChatTemplate is immutable; Render is safe to call from many threads at once.
#ifndef REASONRT_CHAT_H_
#define REASONRT_CHAT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/export.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt {

// One tool call of an assistant turn, OpenAI style.
struct ToolCall {
  std::string id;         // left out of the template's view when empty
  std::string name;       // function name
  std::string arguments;  // the arguments as JSON text, passed to the template as a string
};

struct ChatMessage {
  std::string role;                    // "system", "user", "assistant", "tool", ...
  std::optional<std::string> content;  // nullopt is the template's `none` (tool-call turns)
  // The assistant's thinking, for templates that take it apart from content (Qwen3); the
  // R1 templates instead drop a "...</think>" prefix of content from past turns.
  std::optional<std::string> reasoning_content;
  std::vector<ToolCall> tool_calls;
  std::string tool_call_id;  // role "tool": the call it answers (left out when empty)
  std::string name;          // left out when empty
};

// Bounds on what one Render may do; breaking one is ResourceExhausted naming the line.
struct ChatLimits {
  size_t max_output_bytes = 16u << 20;     // also bounds every string and list built
  int64_t max_loop_iterations = 1 << 20;   // summed over all loops of one render
  int max_call_depth = 64;                 // nested macro calls
};

struct ChatOptions {
  // End with the opening of an assistant turn (the R1 templates open `<think>` there too).
  bool add_generation_prompt = true;
  // Tools as a JSON array of function schemas (passed as `tools`); empty for none.
  std::string tools_json;
  // More variables as a JSON object, e.g. {"enable_thinking": false}; empty for none.
  std::string extra_context_json;
  ChatLimits limits;
};

struct ChatPrompt {
  std::string text;
  // Sorted, disjoint ranges of `text` written by the template itself (its literals and
  // the special-token variables): the only places where special tokens may be recognised.
  std::vector<ByteRange> template_ranges;
};

class RRT_API ChatTemplate {
 public:
  // Which template a model folder uses: chat_template.jinja if present, else
  // tokenizer_config.json's "chat_template" (a string, or a list of named templates, of
  // which `name` or else "default" is taken), else, if `fallback_to_builtin`, the built-in
  // R1 template. Special-token variables come from tokenizer_config.json. NotFound when
  // the folder has no template and no fallback is allowed; InvalidArgument (with the line)
  // for a template that does not parse.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Load(const std::string& model_dir,
                                                            std::string_view name = "",
                                                            bool fallback_to_builtin = true);

  // A template from its source. `special_tokens` maps variable names (bos_token, ...) to
  // their text.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> Parse(
      std::string_view source, const std::map<std::string, std::string>& special_tokens);

  // reasonrt's built-in DeepSeek-R1 template, for models that ship none: renders exactly
  // as the R1 distills' official template (generation prompt "<｜Assistant｜><think>\n"),
  // with DeepSeek's BOS and EOS.
  static absl::StatusOr<std::unique_ptr<ChatTemplate>> BuiltinR1();

  ~ChatTemplate();

  // Renders `messages`. Errors: InvalidArgument for bad tools/extra JSON or a template
  // error (raise_exception, a type error, an unsupported construct) naming the line;
  // ResourceExhausted for a broken limit.
  absl::StatusOr<ChatPrompt> Render(absl::Span<const ChatMessage> messages,
                                    const ChatOptions& options) const;

  // The same with the messages as a JSON array of objects, passed to the template as
  // they are (any keys; tool-call arguments as objects or strings).
  absl::StatusOr<ChatPrompt> RenderJson(std::string_view messages_json,
                                        const ChatOptions& options) const;

  const std::string& source() const;

  struct Impl;

 private:
  explicit ChatTemplate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Token ids of a rendered prompt: special tokens are recognised only inside
// prompt.template_ranges; no BOS is added (the template writes it).
RRT_API absl::StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer,
                                                              const ChatPrompt& prompt);

}  // namespace reasonrt

#endif  // REASONRT_CHAT_H_
