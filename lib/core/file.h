// lib/core/file.h: read-only file mappings and bounded whole-file reads.
#ifndef REASONRT_LIB_CORE_FILE_H_
#define REASONRT_LIB_CORE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace reasonrt {

// A whole file mapped read-only. The mapping lives until the last shared_ptr to it goes.
class MappedFile {
 public:
  // NotFound if the file does not exist; InvalidArgument if it is not a regular file.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

// A whole file copied into anonymous memory (transparent huge pages requested).
class AnonymousBuffer {
 public:
  ~AnonymousBuffer();
  AnonymousBuffer(const AnonymousBuffer&) = delete;
  AnonymousBuffer& operator=(const AnonymousBuffer&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  friend absl::StatusOr<std::shared_ptr<const AnonymousBuffer>> ReadFileToAnonymousMemory(
      const std::string& path);
  AnonymousBuffer(uint8_t* data, size_t size, size_t mapped) : data_(data), size_(size), mapped_(mapped) {}
  uint8_t* data_;
  size_t size_;
  size_t mapped_;
};

// NotFound / ResourceExhausted (no memory) / Internal (read errors), naming the file.
absl::StatusOr<std::shared_ptr<const AnonymousBuffer>> ReadFileToAnonymousMemory(const std::string& path);

// Reads a whole file; ResourceExhausted if it is larger than `max_bytes`.
absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes);

// Writes `contents` to `path` through a temporary file and a rename, so readers never
// see a partial file.
absl::Status WriteStringToFile(const std::string& path, std::string_view contents);

}  // namespace reasonrt

#endif  // REASONRT_LIB_CORE_FILE_H_
