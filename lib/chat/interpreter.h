// lib/chat/interpreter.h: renders a parsed template with jinja2's semantics (scoping of
// set/for/macro, undefined values, Python operators), inside the sandbox limits.
#ifndef REASONRT_LIB_CHAT_INTERPRETER_H_
#define REASONRT_LIB_CHAT_INTERPRETER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/chat/ast.h"
#include "lib/chat/value.h"

namespace reasonrt::chat {

struct Scope {
  Entries vars;
  std::shared_ptr<Scope> parent;
};

class Interpreter {
 public:
  Interpreter(const ChatLimits& limits, Entries globals);
  ~Interpreter();

  // Renders `body` with the globals; the result keeps which bytes are the template's.
  absl::StatusOr<Text> Render(const Body& body);

  // For builtins: errors that name the line being evaluated.
  absl::Status Error(std::string_view message) const;
  absl::Status Exhausted(std::string_view what) const;
  // A string value, refused past the output limit.
  absl::StatusOr<Value> MakeString(Text text);
  // A string or output of `bytes` bytes: refused past max_output_bytes.
  absl::Status CheckSize(size_t bytes) const;
  // A new string of `bytes` was built: CheckSize, and the bytes count against a budget of
  // total work (64 x max_output_bytes), so a loop cannot build huge strings forever.
  absl::Status Built(size_t bytes);
  // A new list of `n` items: at most max_loop_iterations long.
  absl::Status CheckListSize(size_t n) const;
  // Counts iterations against the loop limit (also for builtins that loop: range, join).
  absl::Status CountIterations(int64_t n);
  const ChatLimits& limits() const { return limits_; }

  // Applies a filter or test by name (also used by map/select filters).
  absl::StatusOr<Value> ApplyFilter(std::string_view name, Value subject, CallArgs& args);
  absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& subject, CallArgs& args);
  // Attribute lookup as jinja2 does it: methods of str/dict/list first, then items.
  absl::StatusOr<Value> GetAttr(const Value& subject, std::string_view name);
  absl::StatusOr<Value> GetItem(const Value& subject, const Value& key);
  absl::StatusOr<Value> Call(const Value& callee, CallArgs& args);
  absl::StatusOr<std::vector<Value>> Iterate(const Value& v);

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  absl::StatusOr<Flow> Exec(const Body& body, Text& out);
  absl::StatusOr<Flow> ExecNode(const Node& node, Text& out);
  absl::StatusOr<Flow> ExecFor(const Node& node, Text& out);
  absl::Status ExecSet(const Node& node, Value value);
  absl::StatusOr<Value> Eval(const Expr& e);
  absl::StatusOr<Value> EvalBinary(const std::string& op, const Value& a, const Value& b);
  absl::StatusOr<Value> EvalCompare(const std::string& op, const Value& a, const Value& b);
  absl::StatusOr<Value> EvalSlice(const Value& subject, const Value& start, const Value& stop, const Value& step);
  absl::Status EvalArgs(const Expr& e, size_t first, CallArgs& args);
  Value Lookup(std::string_view name) const;
  void Assign(const std::string& name, Value value);
  absl::StatusOr<Value> MakeMacro(const Node& node);

  ChatLimits limits_;
  Entries globals_;
  std::shared_ptr<Scope> scope_;
  std::vector<std::shared_ptr<Scope>> captured_;  // scopes held by macros, cleared at the end
  int64_t iterations_ = 0;
  uint64_t built_bytes_ = 0;
  int depth_ = 0;
  int call_depth_ = 0;
  int line_ = 0;
};

// str methods, dict/list methods, filters, tests and globals (builtins.cc).
absl::StatusOr<Value> CallMethod(Interpreter& in, const Value& self, std::string_view name, CallArgs& args);
bool HasMethod(const Value& self, std::string_view name);
absl::StatusOr<Value> CallFilter(Interpreter& in, std::string_view name, Value subject, CallArgs& args);
absl::StatusOr<bool> CallTest(Interpreter& in, std::string_view name, const Value& subject, CallArgs& args);
// raise_exception, strftime_now, namespace, range, dict.
Entries BuiltinGlobals();

// Code-point helpers for Python's str indexing.
std::vector<size_t> CodePointOffsets(std::string_view s);  // start of each code point, plus size

}  // namespace reasonrt::chat

#endif  // REASONRT_LIB_CHAT_INTERPRETER_H_
