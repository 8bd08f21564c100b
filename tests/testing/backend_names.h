// tests/testing/backend_names.h: a backend's registered name as the name of a test instance
// parameterized by it ("cuda:1" -> "cuda_1": gtest takes letters, digits and '_' only).
#ifndef REASONRT_TESTS_TESTING_BACKEND_NAMES_H_
#define REASONRT_TESTS_TESTING_BACKEND_NAMES_H_

#include <cctype>
#include <string>

#include "gtest/gtest.h"

namespace reasonrt::testing {

inline std::string BackendTestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

}  // namespace reasonrt::testing

#endif  // REASONRT_TESTS_TESTING_BACKEND_NAMES_H_
