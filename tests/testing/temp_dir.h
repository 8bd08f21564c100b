// tests/testing/temp_dir.h: a fresh directory per test, removed afterwards.
#ifndef REASONRT_TESTS_TESTING_TEMP_DIR_H_
#define REASONRT_TESTS_TESTING_TEMP_DIR_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace reasonrt::testing {

class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const char* base = std::getenv("TEST_TMPDIR");
    path_ = std::filesystem::path(base ? base : std::filesystem::temp_directory_path().string()) /
            (std::string("rrt_") + info->test_suite_name() + "_" + info->name() + "_" +
             std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The folder of the real model configs (../shared/model-configs beside the checkout).
inline std::string ModelConfigsDir() { return RRT_MODEL_CONFIGS_DIR; }

}  // namespace reasonrt::testing

#endif  // REASONRT_TESTS_TESTING_TEMP_DIR_H_
