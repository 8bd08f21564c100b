// safetensors reading: header validation, zero-copy views, sharded checkpoints.
#include "reasonrt/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>

#include "absl/strings/match.h"
#include "lib/core/strings.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/io/json.h"

namespace reasonrt {
namespace fs = std::filesystem;
namespace {

// Largest model.safetensors.index.json we read (R1's is about 9 MB).
constexpr size_t kMaxIndexBytes = 256u << 20;

absl::Status TensorError(std::string_view file, std::string_view tensor, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(file, ": tensor '", tensor, "' ", what));
}

absl::StatusOr<uint64_t> NonNegativeInt(const simdjson::dom::element& e) {
  int64_t i;
  if (e.get_int64().get(i) == simdjson::SUCCESS && i >= 0) return static_cast<uint64_t>(i);
  uint64_t u;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return u;
  return absl::InvalidArgumentError("not a non-negative integer");
}

absl::StatusOr<TensorInfo> ParseTensorEntry(std::string_view file, std::string_view name,
                                            const simdjson::dom::element& value) {
  simdjson::dom::object obj;
  if (value.get_object().get(obj) != simdjson::SUCCESS) {
    return TensorError(file, name, StrCat("entry must be an object, got ", json::TypeName(value)));
  }
  TensorInfo info;
  info.name = std::string(name);
  std::string_view dtype_name;
  simdjson::dom::element e;
  if (obj.at_key("dtype").get(e) != simdjson::SUCCESS || e.get_string().get(dtype_name) != simdjson::SUCCESS) {
    return TensorError(file, name, "has no string 'dtype'");
  }
  auto dtype = ParseSafetensorsDType(dtype_name);
  if (!dtype.ok()) return TensorError(file, name, ToStd(dtype.status().message()));
  info.dtype = *dtype;

  simdjson::dom::array shape;
  if (obj.at_key("shape").get(e) != simdjson::SUCCESS || e.get_array().get(shape) != simdjson::SUCCESS) {
    return TensorError(file, name, "has no array 'shape'");
  }
  if (shape.size() > kMaxTensorRank) {
    return TensorError(file, name, StrCat("has rank ", shape.size(), ", more than ", kMaxTensorRank));
  }
  for (simdjson::dom::element d : shape) {
    auto v = NonNegativeInt(d);
    if (!v.ok() || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return TensorError(file, name, "has a shape entry that is not a non-negative integer");
    }
    info.shape.push_back(static_cast<int64_t>(*v));
  }
  simdjson::dom::array offsets;
  if (obj.at_key("data_offsets").get(e) != simdjson::SUCCESS ||
      e.get_array().get(offsets) != simdjson::SUCCESS || offsets.size() != 2) {
    return TensorError(file, name, "has no 'data_offsets' pair");
  }
  auto begin = NonNegativeInt(offsets.at(0).value_unsafe());
  auto end = NonNegativeInt(offsets.at(1).value_unsafe());
  if (!begin.ok() || !end.ok()) {
    return TensorError(file, name, "has 'data_offsets' that are not non-negative integers");
  }
  info.data_begin = *begin;
  info.data_end = *end;
  if (info.data_end < info.data_begin) {
    return TensorError(file, name, StrCat("ends at byte ", info.data_end, " before it begins (",
                                                info.data_begin, ")"));
  }
  auto n = CheckedNumElements(info.shape);
  if (!n.ok()) return TensorError(file, name, ToStd(n.status().message()));
  const uint64_t elem = DTypeSize(info.dtype);
  if (static_cast<uint64_t>(*n) > std::numeric_limits<uint64_t>::max() / elem ||
      static_cast<uint64_t>(*n) * elem != info.byte_size()) {
    return TensorError(file, name,
                       StrCat("has shape ", ShapeString(info.shape), " of ",
                                    DTypeName(info.dtype), " but spans ", info.byte_size(), " bytes"));
  }
  return info;
}

}  // namespace

int64_t TensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool IsPickleCheckpointName(std::string_view filename) {
  for (std::string_view ext : {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}) {
    if (absl::EndsWithIgnoreCase(ToAbsl(filename), ToAbsl(ext))) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path,
                                                                       bool in_memory) {
  if (IsPickleCheckpointName(path)) {
    return absl::InvalidArgumentError(StrCat(
        path, ": pickle checkpoints are refused (they can run code when read); convert the "
              "model to safetensors"));
  }
  if (in_memory) {
    RRT_ASSIGN_OR_RETURN(std::shared_ptr<const AnonymousBuffer> buf, ReadFileToAnonymousMemory(path));
    const uint8_t* data = buf->data();
    const size_t size = buf->size();
    return FromBuffer(std::move(buf), data, size, path);
  }
  RRT_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapped, MappedFile::Open(path));
  const uint8_t* data = mapped->data();
  const size_t size = mapped->size();
  return FromBuffer(std::move(mapped), data, size, path);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(
    std::shared_ptr<const void> owner, const uint8_t* data, size_t size, std::string name) {
  if (size < 8) {
    return absl::DataLossError(StrCat(name, ": file is ", size,
                                            " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(StrCat(name, ": header length ", header_len,
                                                   " exceeds the limit of ",
                                                   kMaxSafetensorsHeaderBytes, " bytes"));
  }
  if (header_len > size - 8) {
    return absl::DataLossError(StrCat(name, ": header of ", header_len,
                                            " bytes runs past the end of the file (", size,
                                            " bytes)"));
  }
  const std::string_view header(reinterpret_cast<const char*>(data + 8), header_len);
  if (header.empty() || header[0] != '{') {
    return absl::InvalidArgumentError(StrCat(name, ": header does not start with '{'"));
  }
  simdjson::dom::parser parser;
  RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, header, name));
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(StrCat(name, ": header is not a JSON object"));
  }

  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = std::move(name);
  std::set<std::string_view> seen;
  for (auto [key, value] : object) {
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(
          StrCat(file->path_, ": tensor '", key, "' appears twice in the header"));
    }
    if (key == "__metadata__") {
      simdjson::dom::object meta;
      if (value.get_object().get(meta) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            StrCat(file->path_, ": __metadata__ must be an object of strings"));
      }
      for (auto [mkey, mvalue] : meta) {
        std::string_view s;
        if (mvalue.get_string().get(s) != simdjson::SUCCESS) {
          return absl::InvalidArgumentError(StrCat(file->path_, ": __metadata__ value '",
                                                         mkey, "' is not a string"));
        }
        file->metadata_[std::string(mkey)] = std::string(s);
      }
      continue;
    }
    RRT_ASSIGN_OR_RETURN(TensorInfo info, ParseTensorEntry(file->path_, key, value));
    file->tensors_.push_back(std::move(info));
  }

  std::sort(file->tensors_.begin(), file->tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.data_begin != b.data_begin ? a.data_begin < b.data_begin : a.data_end < b.data_end;
  });
  const uint64_t data_size = size - 8 - header_len;
  uint64_t expected = 0;
  for (const TensorInfo& t : file->tensors_) {
    if (t.data_begin != expected) {
      return TensorError(file->path_, t.name,
                         StrCat("begins at byte ", t.data_begin, " of the data section but ",
                                      t.data_begin < expected ? "overlaps the previous tensor"
                                                              : "leaves a gap after the previous tensor",
                                      " (which ends at ", expected, ")"));
    }
    if (t.data_end > data_size) {
      return absl::DataLossError(StrCat(file->path_, ": tensor '", t.name, "' ends at byte ",
                                              t.data_end, " past the end of the data (",
                                              data_size, " bytes)"));
    }
    expected = t.data_end;
  }
  if (expected != data_size) {
    return absl::DataLossError(StrCat(file->path_, ": tensor data ends at byte ", expected,
                                            " but the data section has ", data_size, " bytes"));
  }
  for (size_t i = 0; i < file->tensors_.size(); ++i) file->index_[file->tensors_[i].name] = i;
  file->owner_ = std::move(owner);
  file->data_ = data + 8 + header_len;
  file->size_ = size;
  return file;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<TensorView> SafetensorsFile::Get(std::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(StrCat(path_, ": no tensor '", name, "'"));
  }
  return TensorView::Shared(owner_, data_ + info->data_begin, info->dtype, info->shape,
                            /*read_only=*/true);
}

// ---- Checkpoint ----

namespace {

absl::StatusOr<fs::path> ResolveShard(const fs::path& dir, std::string_view index_name,
                                      std::string_view shard) {
  const fs::path rel(shard);
  if (shard.empty() || rel.is_absolute() || rel.has_root_name()) {
    return absl::InvalidArgumentError(
        StrCat(index_name, ": shard '", shard, "' is not a relative path in the model folder"));
  }
  for (const fs::path& part : rel) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          StrCat(index_name, ": shard '", shard, "' escapes the model folder"));
    }
  }
  const fs::path full = dir / rel;
  std::error_code ec;
  if (!fs::exists(full, ec)) {
    return absl::NotFoundError(
        StrCat(index_name, ": shard '", shard, "' does not exist in ", dir.string()));
  }
  // Symbolic links may not lead out of the folder either.
  const fs::path canon_dir = fs::canonical(dir, ec);
  const fs::path canon = fs::canonical(full, ec);
  if (ec) return absl::NotFoundError(StrCat(index_name, ": cannot resolve shard '", shard, "'"));
  auto [dir_end, _] = std::mismatch(canon_dir.begin(), canon_dir.end(), canon.begin(), canon.end());
  if (dir_end != canon_dir.end()) {
    return absl::InvalidArgumentError(
        StrCat(index_name, ": shard '", shard, "' resolves outside the model folder"));
  }
  return full;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path,
                                                             bool in_memory) {
  std::error_code ec;
  fs::path dir;
  fs::path index_path;
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    dir = path;
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      index_path = dir / "model.safetensors.index.json";
    } else if (fs::exists(dir / "model.safetensors", ec)) {
      files.push_back(dir / "model.safetensors");
    } else {
      bool pickle = false;
      for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const std::string fname = entry.path().filename().string();
        if (absl::EndsWith(fname, ".safetensors")) files.push_back(entry.path());
        if (IsPickleCheckpointName(fname)) pickle = true;
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) {
        if (pickle) {
          return absl::InvalidArgumentError(StrCat(
              path, ": holds only pickle checkpoints (.bin/.pt/...), which are refused; "
                    "convert the model to safetensors"));
        }
        return absl::NotFoundError(StrCat(path, ": no .safetensors files"));
      }
    }
  } else if (absl::EndsWith(path, ".index.json")) {
    index_path = path;
    dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
  } else {
    files.push_back(path);  // SafetensorsFile::Open refuses pickles and reports missing files
  }

  auto ckpt = std::unique_ptr<Checkpoint>(new Checkpoint());
  std::map<std::string, std::string, std::less<>> index_map;  // tensor -> shard name
  if (!index_path.empty()) {
    const std::string index_name = index_path.string();
    RRT_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_name, kMaxIndexBytes));
    simdjson::dom::parser parser;
    RRT_ASSIGN_OR_RETURN(simdjson::dom::element root, json::Parse(parser, text, index_name));
    simdjson::dom::object weight_map;
    if (root["weight_map"].get_object().get(weight_map) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(StrCat(index_name, ": no 'weight_map' object"));
    }
    std::vector<std::string> shards;
    for (auto [tensor, shard_value] : weight_map) {
      std::string_view shard;
      if (shard_value.get_string().get(shard) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError(
            StrCat(index_name, ": weight_map entry '", tensor, "' is not a string"));
      }
      if (!index_map.emplace(std::string(tensor), std::string(shard)).second) {
        return absl::InvalidArgumentError(
            StrCat(index_name, ": tensor '", tensor, "' appears twice in weight_map"));
      }
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.emplace_back(shard);
    }
    for (const std::string& shard : shards) {
      RRT_ASSIGN_OR_RETURN(fs::path full, ResolveShard(dir, index_name, shard));
      files.push_back(full);
    }
  }

  for (const fs::path& file : files) {
    RRT_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Open(file.string(), in_memory));
    const size_t file_index = ckpt->files_.size();
    for (const TensorInfo& t : st->tensors()) {
      auto [it, inserted] = ckpt->tensor_file_.emplace(t.name, file_index);
      if (!inserted) {
        return absl::InvalidArgumentError(StrCat("tensor '", t.name, "' is in both ",
                                                       ckpt->files_[it->second]->path(), " and ",
                                                       st->path()));
      }
    }
    ckpt->files_.push_back(std::move(st));
  }
  for (const auto& [tensor, shard] : index_map) {
    auto it = ckpt->tensor_file_.find(tensor);
    const std::string expected = (dir / shard).string();
    if (it == ckpt->tensor_file_.end() || ckpt->files_[it->second]->path() != expected) {
      return absl::DataLossError(StrCat(index_path.string(), ": tensor '", tensor,
                                              "' is listed in shard '", shard,
                                              "' but that shard does not hold it"));
    }
  }
  return ckpt;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensor_file_.size());
  for (const auto& [name, _] : tensor_file_) out.push_back(name);
  return out;
}

const TensorInfo* Checkpoint::Find(std::string_view name) const {
  auto it = tensor_file_.find(name);
  return it == tensor_file_.end() ? nullptr : files_[it->second]->Find(name);
}

absl::StatusOr<TensorView> Checkpoint::Get(std::string_view name) const {
  auto it = tensor_file_.find(name);
  if (it == tensor_file_.end()) {
    return absl::NotFoundError(StrCat("checkpoint has no tensor '", name, "'"));
  }
  return files_[it->second]->Get(name);
}

std::string Checkpoint::FileOf(std::string_view name) const {
  auto it = tensor_file_.find(name);
  return it == tensor_file_.end() ? std::string() : files_[it->second]->path();
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t total = 0;
  for (const auto& f : files_) {
    for (const TensorInfo& t : f->tensors()) total += t.byte_size();
  }
  return total;
}

}  // namespace reasonrt
