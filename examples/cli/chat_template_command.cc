// `reasonrt chat-template`: prints the prompt a model's chat template makes of messages.
#include <cstdio>

#include "examples/cli/commands.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "reasonrt/chat.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt::cli {
namespace {

constexpr size_t kMaxInputBytes = size_t{1} << 30;

// Special-token variables from the model folder's tokenizer_config.json, if given.
absl::StatusOr<std::map<std::string, std::string>> SpecialTokens(const ChatTemplateArgs& args) {
  std::map<std::string, std::string> special;
  if (!args.model.empty()) {
    auto config = ReadFileToString(args.model + "/tokenizer_config.json", kMaxInputBytes);
    if (config.ok()) {
      simdjson::dom::parser parser;
      const std::string relaxed = json::RelaxBigIntegers(*config);
      RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, relaxed, "tokenizer_config.json"));
      for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
        std::string_view s;
        if (root[key].get_string().get(s) == simdjson::SUCCESS || root[key]["content"].get_string().get(s) == simdjson::SUCCESS) {
          special[key] = std::string(s);
        }
      }
    }
  }
  return special;
}

absl::StatusOr<std::unique_ptr<ChatTemplate>> LoadTemplate(const ChatTemplateArgs& args,
                                                           const std::map<std::string, std::string>& special) {
  if (args.builtin_r1) return ChatTemplate::BuiltinR1();
  if (args.template_file.empty()) {
    if (args.model.empty()) return ChatTemplate::Parse("", special);  // --batch cases bring their own
    return ChatTemplate::Load(args.model);
  }
  RRT_ASSIGN_OR_RETURN(std::string source, ReadFileToString(args.template_file, kMaxInputBytes));
  return ChatTemplate::Parse(source, special);
}

std::string RangesJson(const ChatPrompt& p) {
  std::string out = "[";
  for (size_t i = 0; i < p.template_ranges.size(); ++i) {
    out += StrCat(i ? "," : "", "[", p.template_ranges[i].begin, ",", p.template_ranges[i].end, "]");
  }
  return out + "]";
}

std::string ResultJson(const absl::StatusOr<ChatPrompt>& p) {
  if (!p.ok()) return StrCat("{\"error\": ", json::Quote(ToStd(p.status().message())), "}");
  return StrCat("{\"text\": ", json::Quote(p->text), ", \"template_ranges\": ", RangesJson(*p), "}");
}

// One case of a --batch file: {"messages": [...], "tools": [...], "add_generation_prompt": b,
// "extra": {...}, "template": "..." (optional, with `special` as its special tokens)}.
absl::StatusOr<ChatPrompt> RenderCase(const ChatTemplate& chat, const std::map<std::string, std::string>& special,
                                      simdjson::dom::element c) {
  simdjson::dom::element messages;
  if (c["messages"].get(messages) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("a --batch case has no 'messages'");
  }
  ChatOptions options;
  bool add = true;
  if (c["add_generation_prompt"].get_bool().get(add) == simdjson::SUCCESS) options.add_generation_prompt = add;
  simdjson::dom::element e;
  if (c["tools"].get(e) == simdjson::SUCCESS && !e.is_null()) options.tools_json = simdjson::to_string(e);
  if (c["extra"].get(e) == simdjson::SUCCESS && !e.is_null()) options.extra_context_json = simdjson::to_string(e);
  std::string_view source;
  if (c["template"].get_string().get(source) == simdjson::SUCCESS) {  // a case's own template
    RRT_ASSIGN_OR_RETURN(auto own, ChatTemplate::Parse(source, special));
    return own->RenderJson(simdjson::to_string(messages), options);
  }
  return chat.RenderJson(simdjson::to_string(messages), options);
}

}  // namespace

int RunChatTemplate(const ChatTemplateArgs& args) {
  auto special = SpecialTokens(args);
  if (!special.ok()) return Fail(special.status());
  auto chat = LoadTemplate(args, *special);
  if (!chat.ok()) return Fail(chat.status());
  if (args.source) {
    std::printf("%s", (*chat)->source().c_str());
    return 0;
  }
  if (args.messages.empty()) return Fail(absl::InvalidArgumentError("chat-template needs --messages"));
  auto input = ReadFileToString(args.messages, kMaxInputBytes);
  if (!input.ok()) return Fail(input.status());
  if (args.batch) {
    simdjson::dom::parser parser;
    auto root = json::Parse(parser, *input, args.messages);
    if (!root.ok()) return Fail(root.status());
    simdjson::dom::array cases;
    if (root->get_array().get(cases) != simdjson::SUCCESS) {
      return Fail(absl::InvalidArgumentError(StrCat(args.messages, ": --batch needs a JSON array of cases")));
    }
    std::string out = "[";
    bool first = true;
    for (simdjson::dom::element c : cases) {
      out += first ? "\n" : ",\n";
      first = false;
      out += ResultJson(RenderCase(**chat, *special, c));
    }
    std::printf("%s\n]\n", out.c_str());
    return 0;
  }
  ChatOptions options;
  options.add_generation_prompt = !args.no_generation_prompt;
  if (!args.tools.empty()) {
    auto tools = ReadFileToString(args.tools, kMaxInputBytes);
    if (!tools.ok()) return Fail(tools.status());
    options.tools_json = *tools;
  }
  options.extra_context_json = args.extra;
  auto prompt = (*chat)->RenderJson(*input, options);
  if (!prompt.ok()) return Fail(prompt.status());
  if (args.ids) {
    auto tok = Tokenizer::Load(args.model);
    if (!tok.ok()) return Fail(tok.status());
    auto ids = EncodeChatPrompt(**tok, *prompt);
    if (!ids.ok()) return Fail(ids.status());
    std::string out;
    for (size_t i = 0; i < ids->size(); ++i) out += StrCat(i ? "," : "", (*ids)[i]);
    std::printf("%s\n", out.c_str());
  } else if (args.json) {
    std::printf("%s\n", ResultJson(prompt).c_str());
  } else {
    std::fwrite(prompt->text.data(), 1, prompt->text.size(), stdout);
  }
  return 0;
}

}  // namespace reasonrt::cli
