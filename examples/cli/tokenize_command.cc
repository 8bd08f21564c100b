// `reasonrt tokenize` and `reasonrt detokenize`.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "examples/cli/commands.h"
#include "lib/core/file.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt::cli {

int RunTokenize(const TokenizeArgs& args) {
  auto tok = Tokenizer::Load(args.model);
  if (!tok.ok()) return Fail(tok.status());
  EncodeOptions options;
  options.parse_special = args.parse_special;
  options.add_special_tokens = args.add_special;
  std::vector<std::string> texts;
  if (!args.file.empty()) {
    auto content = ReadFileToString(args.file, size_t{1} << 31);
    if (!content.ok()) return Fail(content.status());
    if (args.batch) {  // a JSON array of strings
      simdjson::dom::parser parser;
      auto root = json::Parse(parser, *content, args.file);
      if (!root.ok()) return Fail(root.status());
      simdjson::dom::array list;
      if (root->get_array().get(list) != simdjson::SUCCESS) {
        return Fail(absl::InvalidArgumentError(StrCat(args.file, ": --batch needs a JSON array of strings")));
      }
      for (simdjson::dom::element e : list) {
        std::string_view s;
        if (e.get_string().get(s) != simdjson::SUCCESS) {
          return Fail(absl::InvalidArgumentError(StrCat(args.file, ": --batch needs a JSON array of strings")));
        }
        texts.emplace_back(s);
      }
    } else {
      texts.push_back(std::move(*content));
    }
  } else {
    texts.push_back(args.text);
  }
  std::vector<std::string> outputs;
  for (const std::string& text : texts) {
    auto ids = (*tok)->Encode(text, options);
    if (!ids.ok()) return Fail(ids.status());
    outputs.push_back(args.json || args.batch ? StrCat("[", absl::StrJoin(*ids, ","), "]")
                                              : absl::StrJoin(*ids, " "));
  }
  if (args.batch) {
    std::printf("[%s]\n", absl::StrJoin(outputs, ",").c_str());
  } else {
    std::printf("%s\n", outputs[0].c_str());
  }
  return 0;
}

int RunDetokenize(const std::string& model, const std::string& ids_text, bool skip_special) {
  auto tok = Tokenizer::Load(model);
  if (!tok.ok()) return Fail(tok.status());
  std::vector<int32_t> ids;
  for (absl::string_view piece : absl::StrSplit(ids_text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return Fail(absl::InvalidArgumentError(StrCat("--ids: '", ToStd(piece), "' is not an integer")));
    }
    ids.push_back(id);
  }
  DecodeOptions options;
  options.skip_special_tokens = skip_special;
  auto text = (*tok)->Decode(ids, options);
  if (!text.ok()) return Fail(text.status());
  std::fwrite(text->data(), 1, text->size(), stdout);
  std::printf("\n");
  return 0;
}

}  // namespace reasonrt::cli
