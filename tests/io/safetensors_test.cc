// safetensors reader and writer: round trips and every validation rule, each with a
// malformed file made here.
#include "reasonrt/safetensors.h"

#include <cstring>
#include <filesystem>
#include <random>

#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace reasonrt {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// A safetensors image from a header text and a data section.
std::string Image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

absl::Status OpenImage(const std::string& bytes) {
  auto owner = std::make_shared<std::string>(bytes);
  return SafetensorsFile::FromBuffer(owner, reinterpret_cast<const uint8_t*>(owner->data()),
                                     owner->size(), "test.safetensors")
      .status();
}

std::string ValidImage() {
  return Image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}})",
               std::string(12, '\x01'));
}

TEST(SafetensorsTest, WriteThenReadRoundTrip) {
  TempDir tmp;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  std::vector<uint16_t> b = {F32ToBf16(1.0f), F32ToBf16(-0.5f), F32ToBf16(2.0f)};
  std::vector<uint8_t> c = {0x38, 0xb8};
  SafetensorsWriter w;
  ASSERT_TRUE(w.Add("x.a", DType::kF32, {2, 3}, absl::MakeConstSpan(reinterpret_cast<uint8_t*>(a.data()), 24)).ok());
  ASSERT_TRUE(w.Add("x.b", DType::kBF16, {3}, absl::MakeConstSpan(reinterpret_cast<uint8_t*>(b.data()), 6)).ok());
  ASSERT_TRUE(w.Add("x.c", DType::kF8E4M3, {1, 2}, c).ok());
  ASSERT_TRUE(w.AddLazy("x.zero", DType::kI64, {0}, nullptr).ok());
  w.SetMetadata("format", "pt");
  ASSERT_TRUE(w.Write(tmp.file("m.safetensors")).ok());

  const std::string bytes = ReadFile(tmp.file("m.safetensors"));
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u) << "data section must start 8-byte aligned";

  auto f = SafetensorsFile::Open(tmp.file("m.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  ASSERT_EQ((*f)->tensors().size(), 4u);
  // Largest dtype first: the f32 tensor starts the data and is aligned.
  EXPECT_EQ((*f)->tensors()[0].dtype, DType::kI64);
  auto ta = (*f)->Get("x.a");
  ASSERT_TRUE(ta.ok());
  EXPECT_EQ(ta->DebugString(), "f32[2, 3]");
  EXPECT_TRUE(ta->read_only());
  EXPECT_EQ(std::memcmp(ta->data(), a.data(), 24), 0);
  auto tb = (*f)->Get("x.b");
  ASSERT_TRUE(tb.ok());
  EXPECT_EQ(tb->data_as<uint16_t>()[1], F32ToBf16(-0.5f));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(tb->data()) % 2, 0u);
  auto tc = (*f)->Get("x.c");
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(Fp8E4M3ToF32(tc->data_as<uint8_t>()[0]), 1.0f);
  EXPECT_EQ(Fp8E4M3ToF32(tc->data_as<uint8_t>()[1]), -1.0f);
  EXPECT_EQ((*f)->Find("x.zero")->byte_size(), 0u);
  EXPECT_EQ((*f)->Get("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, ViewsOutliveTheFileObject) {
  TempDir tmp;
  std::vector<float> a = {4.0f, 5.0f};
  SafetensorsWriter w;
  ASSERT_TRUE(w.Add("a", DType::kF32, {2}, absl::MakeConstSpan(reinterpret_cast<uint8_t*>(a.data()), 8)).ok());
  ASSERT_TRUE(w.Write(tmp.file("m.safetensors")).ok());
  TensorView view;
  {
    auto f = SafetensorsFile::Open(tmp.file("m.safetensors"));
    ASSERT_TRUE(f.ok());
    view = *(*f)->Get("a");
  }
  EXPECT_EQ(view.data_as<float>()[1], 5.0f);
}

TEST(SafetensorsTest, WriterRefusesBadInput) {
  SafetensorsWriter w;
  std::vector<uint8_t> four(4);
  EXPECT_TRUE(w.Add("a", DType::kF32, {1}, four).ok());
  EXPECT_FALSE(w.Add("a", DType::kF32, {1}, four).ok());  // duplicate
  EXPECT_FALSE(w.Add("b", DType::kF32, {2}, four).ok());  // size mismatch
  EXPECT_FALSE(w.Add("", DType::kF32, {1}, four).ok());
  EXPECT_FALSE(w.Add("__metadata__", DType::kF32, {1}, four).ok());
  EXPECT_FALSE(w.AddLazy("c", DType::kF32, {-1}, nullptr).ok());
}

TEST(SafetensorsTest, NamesNeedingEscapesRoundTrip) {
  TempDir tmp;
  const std::string name = "we\"ird\\na\nme\x01\xc3\xa9";
  std::vector<uint8_t> one = {7};
  SafetensorsWriter w;
  ASSERT_TRUE(w.Add(name, DType::kU8, {1}, one).ok());
  ASSERT_TRUE(w.Write(tmp.file("m.safetensors")).ok());
  auto f = SafetensorsFile::Open(tmp.file("m.safetensors"));
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_NE((*f)->Find(name), nullptr);
}

TEST(SafetensorsTest, ValidImageOpens) { EXPECT_TRUE(OpenImage(ValidImage()).ok()); }

TEST(SafetensorsTest, EveryTruncationIsAnError) {
  const std::string image = ValidImage();
  for (size_t n = 0; n < image.size(); ++n) {
    const absl::Status s = OpenImage(image.substr(0, n));
    EXPECT_FALSE(s.ok()) << "truncated to " << n;
    EXPECT_NE(s.message().find("test.safetensors"), absl::string_view::npos) << s;
  }
}

TEST(SafetensorsTest, ExtraBytesAfterTheDataAreAnError) {
  const absl::Status s = OpenImage(ValidImage() + "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
}

TEST(SafetensorsTest, HeaderTooLarge) {
  std::string bytes(8, '\0');
  const uint64_t n = kMaxSafetensorsHeaderBytes + 1;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(n >> (8 * i));
  const absl::Status s = OpenImage(bytes + "{}");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("exceeds the limit"), absl::string_view::npos) << s;
  std::string huge(8, '\xff');  // 2^64 - 1: must not overflow into a small number
  EXPECT_FALSE(OpenImage(huge + "{}").ok());
}

TEST(SafetensorsTest, HeaderLengthPastTheEnd) {
  std::string bytes = Image("{}", "");
  bytes[0] = 100;
  EXPECT_EQ(OpenImage(bytes).code(), absl::StatusCode::kDataLoss);
}

struct BadHeader {
  const char* what;
  std::string header;
  size_t data_bytes;
  const char* expect_in_message;
};

class SafetensorsBadHeaderTest : public ::testing::TestWithParam<BadHeader> {};

TEST_P(SafetensorsBadHeaderTest, IsRefusedWithAClearMessage) {
  const BadHeader& p = GetParam();
  const absl::Status s = OpenImage(Image(p.header, std::string(p.data_bytes, '\0')));
  ASSERT_FALSE(s.ok()) << p.what;
  EXPECT_NE(s.message().find(p.expect_in_message), absl::string_view::npos)
      << p.what << ": " << s;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, SafetensorsBadHeaderTest,
    ::testing::Values(
        BadHeader{"not an object", "[1,2]", 0, "does not start with '{'"},
        BadHeader{"malformed json", R"({"a":{"dtype":"F32",)", 0, "malformed JSON"},
        BadHeader{"invalid utf8", "{\"\xff\xfe\":{}}", 0, "malformed JSON"},
        BadHeader{"unknown dtype", R"({"a":{"dtype":"F8_E5M2","shape":[1],"data_offsets":[0,1]}})", 1,
                  "unsupported safetensors dtype 'F8_E5M2'"},
        BadHeader{"missing dtype", R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "'dtype'"},
        BadHeader{"shape not array", R"({"a":{"dtype":"F32","shape":3,"data_offsets":[0,4]}})", 4, "'shape'"},
        BadHeader{"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "shape entry"},
        BadHeader{"fractional dim", R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4, "shape entry"},
        BadHeader{"rank too high", R"({"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1],"data_offsets":[0,1]}})", 1, "rank 7"},
        BadHeader{"size mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "spans 4 bytes"},
        BadHeader{"shape overflow", R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4, "overflows"},
        BadHeader{"offsets reversed", R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4, "before it begins"},
        BadHeader{"offsets not a pair", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 1, "'data_offsets'"},
        BadHeader{"offset negative", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1, "'data_offsets'"},
        BadHeader{"overlap", R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6, "overlaps"},
        BadHeader{"gap", R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})", 6, "gap"},
        BadHeader{"not starting at zero", R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4, "gap"},
        BadHeader{"past the end", R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4, "past the end"},
        BadHeader{"offset huge", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615]}})", 1, "spans 0 bytes"},
        BadHeader{"duplicate name", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2, "appears twice"},
        BadHeader{"metadata not strings", R"({"__metadata__":{"k":1}})", 0, "__metadata__"},
        BadHeader{"entry not object", R"({"a":[1]})", 0, "must be an object"}));

TEST(SafetensorsTest, RandomCorruptionNeverCrashes) {
  const std::string image = ValidImage();
  std::mt19937 rng(11);
  int opened = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = image;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    opened += OpenImage(bytes).ok();
  }
  // Flips inside the tensor data leave a valid file; most others must not.
  EXPECT_LT(opened, 20000);
}

TEST(SafetensorsTest, PickleCheckpointsAreRefused) {
  TempDir tmp;
  WriteFile(tmp.file("pytorch_model.bin"), "\x80\x02}q\x00.");
  for (const std::string& path : {tmp.file("pytorch_model.bin"), tmp.path()}) {
    auto c = Checkpoint::Open(path);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("pickle"), absl::string_view::npos) << c.status();
  }
  EXPECT_FALSE(SafetensorsFile::Open(tmp.file("weights.pt")).ok());
  EXPECT_TRUE(IsPickleCheckpointName("model.CKPT"));
  EXPECT_FALSE(IsPickleCheckpointName("model.safetensors"));
}

TEST(SafetensorsTest, EmptyFolderAndMissingFile) {
  TempDir tmp;
  EXPECT_EQ(Checkpoint::Open(tmp.path()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Checkpoint::Open(tmp.file("none.safetensors")).status().code(), absl::StatusCode::kNotFound);
}

// ---- sharded checkpoints ----

class ShardedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 10; ++i) values_.push_back(static_cast<float>(i));
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(writer_.Add("t" + std::to_string(i), DType::kF32, {1},
                              absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&values_[i]), 4)).ok());
    }
  }
  std::vector<float> values_;
  SafetensorsWriter writer_;
};

TEST_F(ShardedTest, WriteAndReadShards) {
  TempDir tmp;
  ASSERT_TRUE(writer_.WriteSharded(tmp.path(), 12).ok());  // 3 tensors per shard
  EXPECT_TRUE(std::filesystem::exists(tmp.file("model-00004-of-00004.safetensors")));
  for (const std::string& path : {tmp.path(), tmp.file("model.safetensors.index.json")}) {
    auto c = Checkpoint::Open(path);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ((*c)->files().size(), 4u);
    EXPECT_EQ((*c)->names().size(), 10u);
    EXPECT_EQ((*c)->total_bytes(), 40u);
    for (int i = 0; i < 10; ++i) {
      auto t = (*c)->Get("t" + std::to_string(i));
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t->data_as<float>()[0], static_cast<float>(i));
    }
  }
}

TEST_F(ShardedTest, InMemoryCopyReadsTheSameTensors) {
  TempDir tmp;
  ASSERT_TRUE(writer_.WriteSharded(tmp.path(), 12).ok());
  auto mapped = Checkpoint::Open(tmp.path());
  auto copied = Checkpoint::Open(tmp.path(), /*in_memory=*/true);
  ASSERT_TRUE(mapped.ok() && copied.ok()) << copied.status();
  TensorView keep;
  for (const std::string& name : (*mapped)->names()) {
    auto a = (*mapped)->Get(name), b = (*copied)->Get(name);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(std::memcmp(a->data(), b->data(), a->byte_size()), 0) << name;
    keep = *b;
  }
  copied->reset();
  EXPECT_EQ(keep.data_as<float>()[0], 9.0f);  // the view keeps the copy alive
  EXPECT_EQ(SafetensorsFile::Open(tmp.file("missing.safetensors"), true).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ShardedTest, SingleShardIsOneFile) {
  TempDir tmp;
  ASSERT_TRUE(writer_.WriteSharded(tmp.path(), 1 << 20).ok());
  EXPECT_TRUE(std::filesystem::exists(tmp.file("model.safetensors")));
  EXPECT_FALSE(std::filesystem::exists(tmp.file("model.safetensors.index.json")));
  EXPECT_TRUE(Checkpoint::Open(tmp.path()).ok());
}

void WriteIndex(const TempDir& tmp, const std::string& weight_map) {
  WriteFile(tmp.file("model.safetensors.index.json"),
            "{\"metadata\":{},\"weight_map\":{" + weight_map + "}}");
}

TEST_F(ShardedTest, IndexProblemsAreNamed) {
  TempDir tmp;
  ASSERT_TRUE(writer_.WriteSharded(tmp.path(), 12).ok());
  const std::string shard1 = "model-00001-of-00004.safetensors";
  struct Case {
    std::string weight_map;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {R"("t0":"../)" + shard1 + "\"", absl::StatusCode::kInvalidArgument, "escapes the model folder"},
      {R"("t0":"/etc/passwd")", absl::StatusCode::kInvalidArgument, "not a relative path"},
      {R"("t0":"")", absl::StatusCode::kInvalidArgument, "not a relative path"},
      {R"("t0":"missing.safetensors")", absl::StatusCode::kNotFound, "does not exist"},
      {R"("t5":")" + shard1 + "\"", absl::StatusCode::kDataLoss, "does not hold it"},
      {R"("t0":5)", absl::StatusCode::kInvalidArgument, "not a string"},
      {R"("t0":")" + shard1 + R"(","t0":")" + shard1 + "\"", absl::StatusCode::kInvalidArgument, "twice"},
  };
  for (const Case& c : cases) {
    WriteIndex(tmp, c.weight_map);
    auto ckpt = Checkpoint::Open(tmp.path());
    ASSERT_FALSE(ckpt.ok()) << c.weight_map;
    EXPECT_EQ(ckpt.status().code(), c.code) << c.weight_map << ": " << ckpt.status();
    EXPECT_NE(ckpt.status().message().find(c.message), absl::string_view::npos)
        << c.weight_map << ": " << ckpt.status();
  }
  WriteFile(tmp.file("model.safetensors.index.json"), "{\"metadata\":{}}");
  EXPECT_FALSE(Checkpoint::Open(tmp.path()).ok());
  WriteFile(tmp.file("model.safetensors.index.json"), "{not json");
  EXPECT_FALSE(Checkpoint::Open(tmp.path()).ok());
}

TEST_F(ShardedTest, SymlinkOutOfTheFolderIsRefused) {
  TempDir outside;
  ASSERT_TRUE(writer_.Write(outside.file("elsewhere.safetensors")).ok());
  TempDir tmp;
  std::filesystem::create_symlink(outside.file("elsewhere.safetensors"), tmp.file("link.safetensors"));
  WriteIndex(tmp, R"("t0":"link.safetensors")");
  auto ckpt = Checkpoint::Open(tmp.path());
  ASSERT_FALSE(ckpt.ok());
  EXPECT_NE(ckpt.status().message().find("outside the model folder"), absl::string_view::npos)
      << ckpt.status();
}

TEST_F(ShardedTest, TensorInTwoShardsIsRefused) {
  TempDir tmp;
  ASSERT_TRUE(writer_.Write(tmp.file("a.safetensors")).ok());
  ASSERT_TRUE(writer_.Write(tmp.file("b.safetensors")).ok());
  auto ckpt = Checkpoint::Open(tmp.path());  // no index: every .safetensors file
  ASSERT_FALSE(ckpt.ok());
  EXPECT_NE(ckpt.status().message().find("is in both"), absl::string_view::npos) << ckpt.status();
}

}  // namespace
}  // namespace reasonrt
