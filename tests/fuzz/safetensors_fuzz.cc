// Fuzz target: any bytes as a safetensors file. Must return an error or a file whose
// every tensor view lies inside the buffer; never crash or read outside it.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "reasonrt/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto copy = std::make_shared<std::vector<uint8_t>>(data, data + size);
  auto file = reasonrt::SafetensorsFile::FromBuffer(copy, copy->data(), copy->size(), "fuzz");
  if (!file.ok()) return 0;
  const uint8_t* begin = copy->data();
  const uint8_t* end = begin + copy->size();
  for (const reasonrt::TensorInfo& t : (*file)->tensors()) {
    auto view = (*file)->Get(t.name);
    if (!view.ok()) std::abort();
    const auto* p = static_cast<const uint8_t*>(view->data());
    if (view->byte_size() > 0 && (p < begin || p + view->byte_size() > end)) std::abort();
  }
  return 0;
}
