// Fuzz target: any bytes as a chat template, rendered over a small conversation with tight
// limits. Must render or return an error: no crash, no hang, no unbounded memory.
#include <cstdint>
#include <string_view>

#include "reasonrt/chat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto chat = reasonrt::ChatTemplate::Parse(source, {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  if (!chat.ok()) return 0;
  reasonrt::ChatOptions options;
  options.limits.max_output_bytes = 1 << 16;
  options.limits.max_loop_iterations = 1 << 14;
  options.limits.max_call_depth = 16;
  options.tools_json = R"([{"type": "function", "function": {"name": "f", "parameters": {"x": [1, 2.5, null]}}}])";
  options.extra_context_json = R"({"enable_thinking": false})";
  (void)(*chat)->RenderJson(
      R"([{"role": "system", "content": "s"}, {"role": "user", "content": "héllo {{ x }} <s>"},
          {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
           "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "1"},
          {"role": "assistant", "content": "<think>r</think>a"}])",
      options);
  return 0;
}
