#include <filesystem>
#include <utility>

#include "lib/chat/ast.h"
#include "lib/chat/interpreter.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "reasonrt/chat.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt {
namespace {

constexpr size_t kMaxConfigBytes = 64u << 20;

// reasonrt's own template for models that ship none. It renders exactly what the R1
// distills' official template renders (tests/chat/ compares the two), quirks included:
// the last system message wins, past turns lose everything up to "</think>", and a
// tool-call turn after the first continues the first one's calls.
constexpr std::string_view kBuiltinR1 = R"TEMPLATE(
{%- set state = namespace(system='', in_tool_outputs=false, first_tool_call=true, first_tool_output=true) -%}
{%- for m in messages if m.role == 'system' -%}
  {%- set state.system = m.content -%}
{%- endfor -%}
{{- bos_token ~ state.system -}}
{%- for m in messages -%}
  {%- if m.role == 'user' -%}
    {%- set state.in_tool_outputs = false -%}
    {{- '<｜User｜>' + m.content -}}
  {%- elif m.role == 'assistant' and m.content is none -%}
    {%- set state.in_tool_outputs = false -%}
    {%- for call in m.tool_calls -%}
      {%- set body = '<｜tool▁call▁begin｜>' + call.type + '<｜tool▁sep｜>' + call.function.name
                     + '\n```json\n' + call.function.arguments + '\n```<｜tool▁call▁end｜>' -%}
      {%- if state.first_tool_call -%}
        {{- '<｜Assistant｜><｜tool▁calls▁begin｜>' + body -}}
        {%- set state.first_tool_call = false -%}
      {%- else -%}
        {{- '\n' + body + '<｜tool▁calls▁end｜><｜end▁of▁sentence｜>' -}}
      {%- endif -%}
    {%- endfor -%}
  {%- elif m.role == 'assistant' -%}
    {%- if state.in_tool_outputs -%}
      {{- '<｜tool▁outputs▁end｜>' + m.content + '<｜end▁of▁sentence｜>' -}}
      {%- set state.in_tool_outputs = false -%}
    {%- else -%}
      {{- '<｜Assistant｜>' + m.content.split('</think>') | last + '<｜end▁of▁sentence｜>' -}}
    {%- endif -%}
  {%- elif m.role == 'tool' -%}
    {%- set state.in_tool_outputs = true -%}
    {%- if state.first_tool_output -%}
      {{- '<｜tool▁outputs▁begin｜>' -}}
      {%- set state.first_tool_output = false -%}
    {%- else -%}
      {{- '\n' -}}
    {%- endif -%}
    {{- '<｜tool▁output▁begin｜>' + m.content + '<｜tool▁output▁end｜>' -}}
  {%- endif -%}
{%- endfor -%}
{%- if state.in_tool_outputs -%}
  {{- '<｜tool▁outputs▁end｜>' -}}
{%- elif add_generation_prompt -%}
  {{- '<｜Assistant｜><think>\n' -}}
{%- endif -%}
)TEMPLATE";

const std::map<std::string, std::string>& R1SpecialTokens() {
  static const auto* tokens = new std::map<std::string, std::string>{
      {"bos_token", "<｜begin▁of▁sentence｜>"}, {"eos_token", "<｜end▁of▁sentence｜>"}};
  return *tokens;
}

chat::Value Untrusted(std::string s) { return chat::Value::String(std::move(s), /*trusted=*/false); }

chat::Value MessageValue(const ChatMessage& m) {
  chat::Entries e;
  e.emplace_back("role", Untrusted(m.role));
  e.emplace_back("content", m.content ? Untrusted(*m.content) : chat::Value::None());
  if (m.reasoning_content) e.emplace_back("reasoning_content", Untrusted(*m.reasoning_content));
  if (!m.tool_calls.empty()) {
    chat::List calls;
    for (const ToolCall& c : m.tool_calls) {
      chat::Entries call;
      if (!c.id.empty()) call.emplace_back("id", Untrusted(c.id));
      call.emplace_back("type", Untrusted("function"));
      call.emplace_back("function", chat::Value::MakeDict({{"name", Untrusted(c.name)},
                                                           {"arguments", Untrusted(c.arguments)}}));
      calls.push_back(chat::Value::MakeDict(std::move(call)));
    }
    e.emplace_back("tool_calls", chat::Value::MakeList(std::move(calls)));
  }
  if (!m.tool_call_id.empty()) e.emplace_back("tool_call_id", Untrusted(m.tool_call_id));
  if (!m.name.empty()) e.emplace_back("name", Untrusted(m.name));
  return chat::Value::MakeDict(std::move(e));
}

}  // namespace

struct ChatTemplate::Impl {
  std::string source;
  chat::Body body;
  std::map<std::string, std::string> special_tokens;

  absl::StatusOr<ChatPrompt> Render(chat::Value messages, const ChatOptions& options) const {
    chat::Entries globals = chat::BuiltinGlobals();
    auto set = [&](const std::string& name, chat::Value v) {
      for (auto& [k, old] : globals) {
        if (k == name) {
          old = std::move(v);
          return;
        }
      }
      globals.emplace_back(name, std::move(v));
    };
    // As transformers' apply_chat_template: the special tokens, then messages, tools,
    // documents and add_generation_prompt, then the caller's extra variables.
    for (const auto& [name, text] : special_tokens) set(name, chat::Value::String(text, /*trusted=*/true));
    set("messages", std::move(messages));
    chat::Value tools = chat::Value::None();
    if (!options.tools_json.empty()) {
      RRT_ASSIGN_OR_RETURN(tools, chat::FromJson(options.tools_json, "tools"));
      if (!tools.is_list()) return absl::InvalidArgumentError("tools: expected a JSON array of tool schemas");
    }
    set("tools", std::move(tools));
    set("documents", chat::Value::None());
    set("add_generation_prompt", chat::Value::Bool(options.add_generation_prompt));
    if (!options.extra_context_json.empty()) {
      RRT_ASSIGN_OR_RETURN(chat::Value extra, chat::FromJson(options.extra_context_json, "extra context"));
      if (!extra.is_dict()) return absl::InvalidArgumentError("extra context: expected a JSON object");
      for (const auto& [k, v] : extra.entries()) set(k, v);
    }
    chat::Interpreter interpreter(options.limits, std::move(globals));
    RRT_ASSIGN_OR_RETURN(chat::Text text, interpreter.Render(body));
    ChatPrompt prompt;
    size_t at = 0;
    for (const ByteRange& r : text.untrusted) {
      if (r.begin > at) prompt.template_ranges.push_back({at, r.begin});
      at = r.end;
    }
    if (at < text.bytes.size()) prompt.template_ranges.push_back({at, text.bytes.size()});
    prompt.text = std::move(text.bytes);
    return prompt;
  }
};

ChatTemplate::ChatTemplate(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChatTemplate::~ChatTemplate() = default;

const std::string& ChatTemplate::source() const { return impl_->source; }

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Parse(
    std::string_view source, const std::map<std::string, std::string>& special_tokens) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::string(source);
  RRT_ASSIGN_OR_RETURN(impl->body, chat::ParseTemplate(source));
  impl->special_tokens = special_tokens;
  return std::unique_ptr<ChatTemplate>(new ChatTemplate(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::BuiltinR1() {
  return Parse(kBuiltinR1, R1SpecialTokens());
}

absl::StatusOr<std::unique_ptr<ChatTemplate>> ChatTemplate::Load(const std::string& model_dir, std::string_view name,
                                                                 bool fallback_to_builtin) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir(model_dir);
  std::map<std::string, std::string> special_tokens;
  std::optional<std::string> source;
  const fs::path config_file = dir / "tokenizer_config.json";
  if (fs::exists(config_file, ec)) {
    RRT_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_file.string(), kMaxConfigBytes));
    simdjson::dom::parser parser;
    const std::string relaxed = json::RelaxBigIntegers(config_text);
    RRT_ASSIGN_OR_RETURN(simdjson::dom::element config, json::Parse(parser, relaxed, config_file.string()));
    // The special-token map transformers passes to the template (tokens that are set).
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
      simdjson::dom::element e;
      if (config[key].get(e) != simdjson::SUCCESS || e.is_null()) continue;
      std::string_view s;
      if (e.get_string().get(s) == simdjson::SUCCESS || e["content"].get_string().get(s) == simdjson::SUCCESS) {
        special_tokens[key] = std::string(s);
      }
    }
    simdjson::dom::element t;
    if (config["chat_template"].get(t) == simdjson::SUCCESS && !t.is_null()) {
      std::string_view s;
      if (t.get_string().get(s) == simdjson::SUCCESS) {
        source = std::string(s);
      } else if (simdjson::dom::array list; t.get_array().get(list) == simdjson::SUCCESS) {
        const std::string wanted = name.empty() ? "default" : std::string(name);
        for (simdjson::dom::element entry : list) {
          std::string_view entry_name, entry_template;
          if (entry["name"].get_string().get(entry_name) != simdjson::SUCCESS ||
              entry["template"].get_string().get(entry_template) != simdjson::SUCCESS) {
            return absl::InvalidArgumentError(
                StrCat(config_file.string(), ": chat_template list entries need 'name' and 'template' strings"));
          }
          if (entry_name == wanted) source = std::string(entry_template);
        }
        if (!source) {
          return absl::NotFoundError(StrCat(config_file.string(), ": no chat template named '", wanted, "'"));
        }
      } else {
        return absl::InvalidArgumentError(StrCat(config_file.string(), ": chat_template is neither a string nor a list"));
      }
    }
  }
  const fs::path jinja_file = dir / "chat_template.jinja";
  if (fs::exists(jinja_file, ec)) {
    RRT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(jinja_file.string(), kMaxConfigBytes));
    source = std::move(text);
  }
  if (!source) {
    if (!fallback_to_builtin) return absl::NotFoundError(StrCat(model_dir, ": the model has no chat template"));
    for (const auto& [k, v] : R1SpecialTokens()) special_tokens.emplace(k, v);
    return Parse(kBuiltinR1, special_tokens);
  }
  return Parse(*source, special_tokens);
}

absl::StatusOr<ChatPrompt> ChatTemplate::Render(absl::Span<const ChatMessage> messages,
                                                const ChatOptions& options) const {
  chat::List list;
  for (const ChatMessage& m : messages) list.push_back(MessageValue(m));
  return impl_->Render(chat::Value::MakeList(std::move(list)), options);
}

absl::StatusOr<ChatPrompt> ChatTemplate::RenderJson(std::string_view messages_json, const ChatOptions& options) const {
  RRT_ASSIGN_OR_RETURN(chat::Value messages, chat::FromJson(messages_json, "messages"));
  if (!messages.is_list()) return absl::InvalidArgumentError("messages: expected a JSON array of message objects");
  return impl_->Render(std::move(messages), options);
}

absl::StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer, const ChatPrompt& prompt) {
  EncodeOptions options;
  // No template text at all: nothing may become a special token.
  options.parse_special = !prompt.template_ranges.empty();
  options.add_special_tokens = false;
  options.special_ranges = prompt.template_ranges;
  return tokenizer.Encode(prompt.text, options);
}

}  // namespace reasonrt
