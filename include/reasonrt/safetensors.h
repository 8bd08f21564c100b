// reasonrt/safetensors.h: read and write Hugging Face safetensors checkpoints.
//
// Basic usage:
//
//   // A model folder: model.safetensors, or shards listed by model.safetensors.index.json.
//   absl::StatusOr<std::unique_ptr<reasonrt::Checkpoint>> ckpt =
//       reasonrt::Checkpoint::Open("/models/DeepSeek-R1-Distill-Qwen-1.5B");
//   if (!ckpt.ok()) { /* ckpt.status().message() names the file and tensor at fault */ }
//   absl::StatusOr<reasonrt::TensorView> w = (*ckpt)->Get("model.embed_tokens.weight");
//
//   // Writing (tests, tools, weight export):
//   reasonrt::SafetensorsWriter writer;
//   writer.Add("w", DType::kBF16, {2, 3}, bytes);          // bytes must outlive Write()
//   absl::Status s = writer.Write("/tmp/out.safetensors");
//
// Files are memory-mapped and validated once, when opened, as strictly as the reference
// implementation: header length (at most 100,000,000 bytes), well-formed JSON, known
// dtypes, shape x dtype size == byte span, spans in bounds, contiguous, non-overlapping,
// and the file ending where the data ends; duplicate names are refused. Tensors are
// zero-copy, read-only views into the mapping, which stays alive while any view does;
// nothing is read from disk until a tensor's bytes are touched. Tensor data in a
// safetensors file is only as aligned as its offset: kernels must not assume alignment.
// Pickle checkpoints (.bin, .pt, .pth, .ckpt, .pkl) are refused, never read.
//
// Opened files and checkpoints are immutable and safe to use from many threads.
#ifndef REASONRT_SAFETENSORS_H_
#define REASONRT_SAFETENSORS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/dtype.h"
#include "reasonrt/export.h"
#include "reasonrt/tensor.h"

namespace reasonrt {

// The largest safetensors JSON header we accept, as the reference implementation.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t data_begin = 0;  // byte offsets relative to the start of the data section
  uint64_t data_end = 0;
  int64_t num_elements() const;
  uint64_t byte_size() const { return data_end - data_begin; }
};

class RRT_API SafetensorsFile {
 public:
  // Maps and validates one file. Errors name the file (and the tensor where one is at fault).
  // With `in_memory`, reads the whole file into anonymous memory (huge pages where the
  // system allows) instead of mapping it: a copy that the page cache cannot evict.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path,
                                                               bool in_memory = false);

  // Validates an image already in memory; `owner` keeps `data` alive for the views.
  // `name` stands for the file in error messages.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(
      std::shared_ptr<const void> owner, const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return path_; }
  // Tensors in the order of their data in the file.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when there is no such tensor.
  const TensorInfo* Find(std::string_view name) const;
  // A read-only view of the tensor's bytes; NotFound naming the file otherwise.
  absl::StatusOr<TensorView> Get(std::string_view name) const;
  uint64_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// The weights of one model: a single safetensors file or a sharded set.
class RRT_API Checkpoint {
 public:
  // `path` is a model folder, a .safetensors file, or a model.safetensors.index.json.
  // In a folder, model.safetensors.index.json wins, then model.safetensors, then every
  // *.safetensors file in it. Index entries must name shards inside the folder that exist
  // and hold the tensor; a tensor in two shards is an error.
  // `in_memory`: read every file into anonymous memory (see SafetensorsFile::Open).
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& path,
                                                          bool in_memory = false);

  // Tensor names, sorted.
  std::vector<std::string> names() const;
  const TensorInfo* Find(std::string_view name) const;
  absl::StatusOr<TensorView> Get(std::string_view name) const;
  // The file that holds `name` (for error messages); empty if none.
  std::string FileOf(std::string_view name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // Sum of the tensors' byte sizes.
  uint64_t total_bytes() const;

 private:
  Checkpoint() = default;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t, std::less<>> tensor_file_;  // name -> index into files_
};

// True for file names that are pickle checkpoints (.bin, .pt, .pth, .ckpt, .pkl).
RRT_API bool IsPickleCheckpointName(std::string_view filename);

// Builds safetensors files. Tensors are laid out by decreasing dtype size, then name
// (the order the reference writer uses), so each tensor's data is aligned to its element
// size; the header is space-padded to a multiple of 8 bytes.
class RRT_API SafetensorsWriter {
 public:
  // Fills the tensor's bytes (exactly its byte size) when the file is written.
  using Fill = std::function<absl::Status(absl::Span<uint8_t> out)>;

  // Adds a tensor whose bytes are `data` (not copied: keep it alive until Write returns).
  // InvalidArgument for a duplicate or empty name or a size that does not match the shape.
  absl::Status Add(std::string name, DType dtype, std::vector<int64_t> shape,
                   absl::Span<const uint8_t> data);
  // Adds a tensor filled at write time; a null `fill` leaves it zero (sparse on disk).
  absl::Status AddLazy(std::string name, DType dtype, std::vector<int64_t> shape, Fill fill);
  void SetMetadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

  // Writes one file (through a temporary name and a rename).
  absl::Status Write(const std::string& path) const;

  // Writes `<dir>/model-0000i-of-0000n.safetensors` shards of at most `max_shard_bytes`
  // of data each (a larger tensor gets a shard of its own) and
  // `<dir>/model.safetensors.index.json`; with one shard, writes `<dir>/model.safetensors`.
  absl::Status WriteSharded(const std::string& dir, uint64_t max_shard_bytes) const;

  uint64_t total_bytes() const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t bytes;
    absl::Span<const uint8_t> data;
    Fill fill;
  };
  absl::Status WriteEntries(const std::string& path, std::vector<const Entry*> entries) const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace reasonrt

#endif  // REASONRT_SAFETENSORS_H_
