// safetensors writing: header layout as the reference writer, data through a file mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "lib/core/strings.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "lib/core/file.h"
#include "lib/core/status_macros.h"
#include "lib/io/json.h"
#include "reasonrt/safetensors.h"

namespace reasonrt {
namespace {

absl::Status IoError(std::string_view what, const std::string& path) {
  return absl::InternalError(StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status SafetensorsWriter::Add(std::string name, DType dtype, std::vector<int64_t> shape,
                                    absl::Span<const uint8_t> data) {
  RRT_RETURN_IF_ERROR(AddLazy(std::move(name), dtype, std::move(shape), nullptr));
  Entry& e = entries_.back();
  if (data.size() != e.bytes) {
    const std::string msg = StrCat("tensor '", e.name, "' has shape ", ShapeString(e.shape),
                                         " of ", DTypeName(dtype), " (", e.bytes,
                                         " bytes) but ", data.size(), " bytes were given");
    entries_.pop_back();
    return absl::InvalidArgumentError(msg);
  }
  e.data = data;
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::AddLazy(std::string name, DType dtype, std::vector<int64_t> shape,
                                        Fill fill) {
  if (name.empty() || name == "__metadata__") {
    return absl::InvalidArgumentError(StrCat("invalid tensor name '", name, "'"));
  }
  for (const Entry& e : entries_) {
    if (e.name == name) return absl::InvalidArgumentError(StrCat("tensor '", name, "' added twice"));
  }
  RRT_ASSIGN_OR_RETURN(int64_t n, CheckedNumElements(shape));
  entries_.push_back(Entry{std::move(name), dtype, std::move(shape),
                           static_cast<uint64_t>(n) * DTypeSize(dtype), {}, std::move(fill)});
  return absl::OkStatus();
}

uint64_t SafetensorsWriter::total_bytes() const {
  uint64_t total = 0;
  for (const Entry& e : entries_) total += e.bytes;
  return total;
}

absl::Status SafetensorsWriter::WriteEntries(const std::string& path,
                                             std::vector<const Entry*> entries) const {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    const size_t sa = DTypeSize(a->dtype), sb = DTypeSize(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  std::vector<std::string> fields;
  if (!metadata_.empty()) {
    std::vector<std::string> meta;
    for (const auto& [k, v] : metadata_) meta.push_back(StrCat(json::Quote(k), ":", json::Quote(v)));
    fields.push_back(StrCat("\"__metadata__\":{", absl::StrJoin(meta, ","), "}"));
  }
  uint64_t offset = 0;
  for (const Entry* e : entries) {
    fields.push_back(StrCat(json::Quote(e->name), ":{\"dtype\":\"",
                                  SafetensorsDTypeName(e->dtype), "\",\"shape\":[",
                                  absl::StrJoin(e->shape, ","), "],\"data_offsets\":[", offset,
                                  ",", offset + e->bytes, "]}"));
    offset += e->bytes;
  }
  std::string header = StrCat("{", absl::StrJoin(fields, ","), "}");
  header.resize((header.size() + 7) / 8 * 8, ' ');
  const uint64_t total = 8 + header.size() + offset;

  const std::string tmp = StrCat(path, ".tmp.", ::getpid());
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", tmp);
  auto fail = [&](absl::Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  if (::ftruncate(fd, static_cast<off_t>(total)) != 0) return fail(IoError("cannot size", tmp));
  void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return fail(IoError("cannot map", tmp));
  auto* out = static_cast<uint8_t*>(map);
  const uint64_t header_len = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(header_len >> (8 * i));
  std::memcpy(out + 8, header.data(), header.size());
  uint8_t* data = out + 8 + header.size();
  absl::Status status;
  for (const Entry* e : entries) {
    if (!e->data.empty()) {
      std::memcpy(data, e->data.data(), e->bytes);
    } else if (e->fill) {
      status = e->fill(absl::MakeSpan(data, e->bytes));
      if (!status.ok()) break;
    }
    data += e->bytes;
  }
  const bool unmapped = ::munmap(map, total) == 0;
  if (!status.ok()) return fail(status);
  if (!unmapped) return fail(IoError("cannot unmap", tmp));
  if (::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const absl::Status s = IoError("cannot write", path);
    ::unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Write(const std::string& path) const {
  std::vector<const Entry*> all;
  for (const Entry& e : entries_) all.push_back(&e);
  return WriteEntries(path, std::move(all));
}

absl::Status SafetensorsWriter::WriteSharded(const std::string& dir, uint64_t max_shard_bytes) const {
  std::vector<std::vector<const Entry*>> shards(1);
  uint64_t in_shard = 0;
  for (const Entry& e : entries_) {
    if (!shards.back().empty() && in_shard + e.bytes > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&e);
    in_shard += e.bytes;
  }
  const std::filesystem::path base(dir);
  if (shards.size() == 1) return WriteEntries((base / "model.safetensors").string(), shards[0]);
  std::vector<std::string> map_entries;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string name =
        absl::StrFormat("model-%05d-of-%05d.safetensors", i + 1, shards.size());
    for (const Entry* e : shards[i]) {
      map_entries.push_back(StrCat("    ", json::Quote(e->name), ": ", json::Quote(name)));
    }
    RRT_RETURN_IF_ERROR(WriteEntries((base / name).string(), shards[i]));
  }
  std::sort(map_entries.begin(), map_entries.end());
  const std::string index =
      StrCat("{\n  \"metadata\": {\"total_size\": ", total_bytes(),
                   "},\n  \"weight_map\": {\n", absl::StrJoin(map_entries, ",\n"), "\n  }\n}\n");
  return WriteStringToFile((base / "model.safetensors.index.json").string(), index);
}

}  // namespace reasonrt
