// Tokenizer: round trips, streaming, special tokens, bad input, malformed files.
#include "reasonrt/tokenizer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "lib/models/synth.h"
#include "lib/tokenizer/utf8.h"
#include "simdjson.h"

namespace reasonrt {
namespace {

std::string RealDir(const std::string& family) {
  return std::string(RRT_TOKENIZER_FILES_DIR) + "/tokenizer-" + family + "/models";
}

const std::vector<std::string> kSamples = {
    "Hello, world! It's 2026.", "  leading and trailing  ", "tabs\tand\nnewlines\r\n\n",
    "人工智能正在改变世界", "日本語のテキストとカタカナ", "한국어 텍스트", "مرحبا بالعالم",
    "👨‍👩‍👧‍👦 family 🏳️‍🌈 flags 🇯🇵", "def f(x):\n    return x ** 2\n", "\\frac{1}{2} = 0.5",
    "1234567890123456789", "e\u0301 é Å", "🪼 jellyfish (Unicode 15)", "", " ", "\u3000",
    "<｜User｜>hi</think><|im_start|>"};

class RealTokenizerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(RealDir(GetParam()))) GTEST_SKIP() << "npm test data not installed";
    auto t = Tokenizer::Load(RealDir(GetParam()));
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = std::move(*t);
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_P(RealTokenizerTest, DecodeOfEncodeIsTheText) {
  for (const std::string& s : kSamples) {
    for (bool parse_special : {false, true}) {
      EncodeOptions o;
      o.parse_special = parse_special;
      auto ids = tok_->Encode(s, o);
      ASSERT_TRUE(ids.ok()) << ids.status();
      auto text = tok_->Decode(*ids, {});
      ASSERT_TRUE(text.ok());
      // NFC (Qwen) may compose characters; compare with the composed form then.
      if (GetParam() != "qwen3") EXPECT_EQ(*text, s);
    }
  }
}

TEST_P(RealTokenizerTest, StreamingDecodeEmitsWholeCharacters) {
  std::string all;
  for (const std::string& s : kSamples) all += s;
  auto ids = tok_->Encode(all, {});
  ASSERT_TRUE(ids.ok());
  Tokenizer::StreamDecoder stream(*tok_);
  std::string streamed;
  for (int32_t id : *ids) {
    auto piece = stream.Add(id);
    ASSERT_TRUE(piece.ok());
    EXPECT_EQ(utf8::FirstInvalid(*piece), std::string_view::npos) << "partial character emitted";
    streamed += *piece;
  }
  streamed += stream.Finish();
  EXPECT_EQ(streamed, *tok_->Decode(*ids, {}));
}

TEST_P(RealTokenizerTest, SpecialTokensOnlyWhenAsked) {
  const std::string text = "<｜end▁of▁sentence｜>";
  auto plain = tok_->Encode(text, {});
  ASSERT_TRUE(plain.ok());
  for (int32_t id : *plain) EXPECT_FALSE(tok_->IsSpecial(id)) << id;
  EncodeOptions o;
  o.parse_special = true;
  if (GetParam() == "deepseek_v3") {
    auto parsed = tok_->Encode(text, o);
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, std::vector<int32_t>{1});
  }
}

TEST_P(RealTokenizerTest, BadInputIsAnError) {
  auto bad = tok_->Encode(std::string("ok \xff\xfe here"), {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("byte 3"), absl::string_view::npos) << bad.status();
  EXPECT_FALSE(tok_->Encode(std::string("\xed\xa0\x80"), {}).ok());  // a surrogate
  EXPECT_EQ(tok_->Decode({-1}, {}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(tok_->Decode({tok_->vocab_size()}, {}).status().code(), absl::StatusCode::kOutOfRange);
  // A token boundary inside a character decodes to U+FFFD, never invalid UTF-8.
  auto ids = tok_->Encode("🤖", {});
  ASSERT_TRUE(ids.ok());
  if (ids->size() > 1) {
    auto part = tok_->Decode(absl::MakeConstSpan(ids->data(), 1), {});
    ASSERT_TRUE(part.ok());
    EXPECT_EQ(*part, "\xEF\xBF\xBD");
  }
}

TEST_P(RealTokenizerTest, LongInputWithoutSpaces) {
  std::string s(2 << 20, 'a');
  for (size_t i = 0; i < s.size(); i += 7) s[i] = 'b';
  auto ids = tok_->Encode(s, {});
  ASSERT_TRUE(ids.ok());
  EXPECT_GT(ids->size(), 1000u);
  EXPECT_EQ(*tok_->Decode(*ids, {}), s);
}

TEST_P(RealTokenizerTest, BosFromTheConfig) {
  EncodeOptions o;
  o.add_special_tokens = true;
  auto ids = tok_->Encode("hi", o);
  ASSERT_TRUE(ids.ok());
  if (GetParam() == "deepseek_v3") EXPECT_EQ(ids->front(), 0);       // add_bos_token
  if (GetParam() == "llama3_1") EXPECT_EQ(ids->front(), 128000);     // TemplateProcessing
  if (GetParam() == "qwen3") EXPECT_EQ(*ids, *tok_->Encode("hi", {}));  // no BOS
}

// decode(encode(s)) == s over the whole test corpus (RRT_CORPUS, written by ctest's
// tokenizer.corpus fixture from make_corpus.py). Qwen's NFC normalizer changes text that
// is not in NFC, so there the round trip must give the NFC form: checked as a fixed point.
TEST_P(RealTokenizerTest, CorpusRoundTrip) {
  const char* path = std::getenv("RRT_CORPUS");
  if (path == nullptr) GTEST_SKIP() << "RRT_CORPUS not set";
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  simdjson::dom::parser parser;
  simdjson::dom::array list;
  ASSERT_EQ(parser.parse(text).get_array().get(list), simdjson::SUCCESS);
  size_t n = 0;
  for (simdjson::dom::element e : list) {
    const std::string s(std::string_view(e.get_string()));
    auto ids = tok_->Encode(s, {});
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto back = tok_->Decode(*ids, {});
    ASSERT_TRUE(back.ok());
    if (GetParam() == "qwen3") {
      EXPECT_EQ(*tok_->Decode(*tok_->Encode(*back, {}), {}), *back) << s;
    } else {
      ASSERT_EQ(*back, s);
    }
    ++n;
  }
  EXPECT_GE(n, 10000u);
}

INSTANTIATE_TEST_SUITE_P(Files, RealTokenizerTest, ::testing::Values("deepseek_v3", "qwen3", "llama3_1"));

// ---- synth writes the R1 family's tokenizers ----

TEST(SynthTokenizerTest, FamilyTokenizersFromTheRealFiles) {
  const std::string files = RRT_TOKENIZER_FILES_DIR;
  const std::string configs = std::string(RRT_MODEL_CONFIGS_DIR);
  if (!std::filesystem::exists(files) || !std::filesystem::exists(configs)) GTEST_SKIP();
  struct Case {
    std::string config;
    int64_t layers;
    int32_t bos, user, assistant, think, end_think, eos;
    std::string base;
  };
  const std::vector<Case> cases = {
      {"deepseek-r1.json", 4, 0, 128803, 128804, 128798, 128799, 1, "deepseek_v3"},
      {"r1-distill-qwen-1.5b.json", 1, 151646, 151644, 151645, 151648, 151649, 151643, "qwen3"},
      {"r1-distill-llama-8b.json", 1, 128000, 128011, 128012, 128013, 128014, 128001, "llama3_1"},
  };
  for (const Case& c : cases) {
    const std::string out = ::testing::TempDir() + "/synth_tok_" + c.base;
    std::filesystem::remove_all(out);
    SynthOptions o;
    o.config_path = configs + "/" + c.config;
    o.out_dir = out;
    o.layers = c.layers;
    o.zeros = true;
    o.tokenizer_files = files;
    ASSERT_TRUE(WriteSyntheticModel(o).ok()) << c.config;
    auto tok = Tokenizer::Load(out);
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_EQ((*tok)->TokenId("<｜User｜>"), c.user) << c.config;
    EXPECT_EQ((*tok)->TokenId("<｜Assistant｜>"), c.assistant);
    EXPECT_EQ((*tok)->TokenId("<think>"), c.think);
    EXPECT_EQ((*tok)->TokenId("</think>"), c.end_think);
    EXPECT_EQ((*tok)->bos_id(), c.bos);
    EXPECT_EQ((*tok)->eos_id(), c.eos);
    EncodeOptions o2;
    o2.parse_special = true;
    o2.add_special_tokens = true;
    auto ids = (*tok)->Encode("<｜User｜>2+2?<｜Assistant｜><think>", o2);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(ids->front(), c.bos);
    EXPECT_EQ(ids->back(), c.think);
    // Plain text tokenizes exactly as the base model's tokenizer does.
    auto base = Tokenizer::Load(RealDir(c.base));
    ASSERT_TRUE(base.ok());
    for (const std::string& sample : kSamples) {
      EXPECT_EQ(*(*tok)->Encode(sample, {}), *(*base)->Encode(sample, {})) << sample;
    }
    std::filesystem::remove_all(out);
  }
}

// ---- malformed tokenizer.json ----

std::string Minimal(const std::string& model_extra = "", const std::string& pre = R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":true})") {
  return R"({"added_tokens":[{"id":5,"content":"<s>","special":true}],"normalizer":null,"pre_tokenizer":)" + pre +
         R"(,"post_processor":null,"decoder":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"c":4},"merges":["a b"])" +
         model_extra + "}}";
}

TEST(TokenizerFileTest, MinimalLoadsAndMerges) {
  auto t = Tokenizer::FromJson(Minimal(), "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*(*t)->Encode("ab c", {}), (std::vector<int32_t>{2, 3, 4}));
  EncodeOptions o;
  o.parse_special = true;
  EXPECT_EQ(*(*t)->Encode("a<s>b", o), (std::vector<int32_t>{0, 5, 1}));
  EXPECT_FALSE((*t)->Encode("d", {}).ok());  // no token for 'd', no byte fallback
}

TEST(TokenizerFileTest, ByteFallbackAndIgnoreMerges) {
  // Vocabulary: "a", "b", "ab", "abab" and the 256 <0xXX> byte tokens; merges a+b only.
  std::string vocab = R"("a":0,"b":1,"ab":2,"abab":3)";
  char buf[32];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof(buf), ",\"<0x%02X>\":%d", b, 10 + b);
    vocab += buf;
  }
  auto make = [&](bool ignore_merges) {
    return R"({"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},)"
           R"("model":{"type":"BPE","byte_fallback":true,"ignore_merges":)" +
           std::string(ignore_merges ? "true" : "false") + R"(,"vocab":{)" + vocab + R"(},"merges":["a b"]}})";
  };
  auto t = Tokenizer::FromJson(make(false), "");
  ASSERT_TRUE(t.ok()) << t.status();
  // 'c' has no token: its byte (0x63) comes out as <0x63>.
  EXPECT_EQ(*(*t)->Encode("abc", {}), (std::vector<int32_t>{2, 10 + 0x63}));
  EXPECT_EQ(*(*t)->Encode("abab", {}), (std::vector<int32_t>{2, 2}));  // no merge makes abab
  auto ignore = Tokenizer::FromJson(make(true), "");
  ASSERT_TRUE(ignore.ok());
  EXPECT_EQ(*(*ignore)->Encode("abab", {}), (std::vector<int32_t>{3}));  // whole word in vocab
}

TEST(TokenizerFileTest, UnsupportedComponentsAreNamed) {
  struct Case {
    std::string json;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {R"({"model":{"type":"WordPiece","vocab":{}}})", "model type 'WordPiece'"},
      {Minimal("", R"({"type":"Metaspace"})"), "pre_tokenizer type 'Metaspace'"},
      {Minimal("", R"({"type":"Split","pattern":{"Regex":"a"},"behavior":"Removed"})"), "Removed"},
      {Minimal("", R"({"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated"})"), "does not compile"},
      {Minimal(R"(,"continuing_subword_prefix":"##")"), "continuing_subword_prefix"},
      {R"({"normalizer":{"type":"Lowercase"},"model":{"type":"BPE","vocab":{},"merges":[]}})", "normalizer type 'Lowercase'"},
      {R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}})", "missing from the vocabulary"},
      {R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a"]}})", "not two tokens"},
      {R"({"model":{"type":"BPE","vocab":{"a":-4},"merges":[]}})", "bad id"},
      {R"({"model":{"type":"BPE"}})", "'vocab' and 'merges'"},
      {R"({"model":{"type":"BPE","vocab":{},"merges":[]}})", "byte-level"},
      {"{not json", "malformed JSON"},
      {R"({"added_tokens":[{"content":"x"}],"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{},"merges":[]}})", "added token"},
  };
  for (const Case& c : cases) {
    auto t = Tokenizer::FromJson(c.json, "", "t.json");
    ASSERT_FALSE(t.ok()) << c.json;
    EXPECT_NE(t.status().message().find(c.expect), absl::string_view::npos) << t.status();
  }
}

TEST(TokenizerFileTest, RandomCorruptionNeverCrashes) {
  const std::string good = Minimal();
  std::mt19937 rng(5);
  for (int i = 0; i < 3000; ++i) {
    std::string s = good;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    auto t = Tokenizer::FromJson(s, "");
    if (t.ok()) (void)(*t)->Encode("ab c", {});
  }
}

TEST(Utf8Test, RepairReplacesMaximalSubparts) {
  EXPECT_EQ(RepairUtf8("abc", false, nullptr), "abc");
  EXPECT_EQ(RepairUtf8("a\xff" "b", false, nullptr), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(RepairUtf8("\xe4\xbd", false, nullptr), "\xEF\xBF\xBD");  // truncated: one U+FFFD
  std::string tail;
  EXPECT_EQ(RepairUtf8("x\xe4\xbd", true, &tail), "x");
  EXPECT_EQ(tail, "\xe4\xbd");
  EXPECT_EQ(RepairUtf8("\xe4\xbd" "a", false, nullptr), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(RepairUtf8("\xc0\xaf", false, nullptr), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
}

}  // namespace
}  // namespace reasonrt
