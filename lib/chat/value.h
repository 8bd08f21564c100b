// lib/chat/value.h: the values a chat template computes with, with Python's semantics
// (str(), repr(), truthiness, ==, <) as jinja2 has them.
#ifndef REASONRT_LIB_CHAT_VALUE_H_
#define REASONRT_LIB_CHAT_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "reasonrt/chat.h"

namespace reasonrt::chat {

class Value;
class Interpreter;

// Text with the byte ranges that did not come from the template (message content, tool
// JSON): special tokens are recognised only outside them.
struct Text {
  std::string bytes;
  std::vector<ByteRange> untrusted;  // sorted, disjoint

  bool trusted() const { return untrusted.empty(); }
  void Append(const Text& other);
  void Append(std::string_view s, bool trusted);
};

struct Function;
using List = std::vector<Value>;
using Entries = std::vector<std::pair<std::string, Value>>;  // insertion order, like dict

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kFunction };

  Value() = default;  // undefined
  static Value Undefined(std::string name) {
    Value v;
    v.text_ = std::make_shared<Text>(Text{std::move(name), {}});
    return v;
  }
  static Value None() { return Value(Kind::kNone); }
  static Value Bool(bool b) { Value v(Kind::kBool); v.int_ = b; return v; }
  static Value Int(int64_t i) { Value v(Kind::kInt); v.int_ = i; return v; }
  static Value Float(double d) { Value v(Kind::kFloat); v.float_ = d; return v; }
  static Value String(Text t) {
    Value v(Kind::kString);
    v.text_ = std::make_shared<const Text>(std::move(t));
    return v;
  }
  static Value String(std::string s, bool trusted) {
    Text t;
    t.Append(s, trusted);
    return String(std::move(t));
  }
  static Value MakeList(List items, bool tuple = false) {
    Value v(Kind::kList);
    v.list_ = std::make_shared<const List>(std::move(items));
    v.int_ = tuple;
    return v;
  }
  static Value MakeDict(Entries entries) {
    Value v(Kind::kDict);
    v.dict_ = std::make_shared<Entries>(std::move(entries));
    return v;
  }
  // A jinja2 namespace(): the one mutable object (`set ns.x = ...`).
  static Value MakeNamespace(Entries entries) {
    Value v = MakeDict(std::move(entries));
    v.kind_ = Kind::kNamespace;
    return v;
  }
  static Value MakeFunction(std::shared_ptr<const Function> f) {
    Value v(Kind::kFunction);
    v.function_ = std::move(f);
    return v;
  }

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && int_ != 0; }
  bool is_dict() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_function() const { return kind_ == Kind::kFunction; }

  bool bool_value() const { return int_ != 0; }
  int64_t int_value() const { return int_; }  // bools too
  double number() const { return kind_ == Kind::kFloat ? float_ : static_cast<double>(int_); }
  const Text& text() const { return *text_; }
  const std::string& str() const { return text_->bytes; }
  const List& list() const { return *list_; }
  const Entries& entries() const { return *dict_; }
  Entries& mutable_entries() const { return *dict_; }  // namespaces only
  const Function& function() const { return *function_; }
  // The name an undefined value was looked up by, for error messages.
  std::string undefined_name() const { return text_ ? text_->bytes : std::string(); }

  // A dict's value for `key`, or nullptr.
  const Value* Find(std::string_view key) const;

  // Python's bool().
  bool Truthy() const;
  // Jinja's type name in messages ("str", "int", "list", "dict", "NoneType", ...).
  std::string_view TypeName() const;

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::kUndefined;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const Text> text_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Entries> dict_;
  std::shared_ptr<const Function> function_;
};

// A callable: a builtin (raise_exception, namespace, range, a bound string method) or a
// macro. Arguments arrive evaluated, keywords by name.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};
struct Function {
  std::string name;
  std::function<absl::StatusOr<Value>(Interpreter&, CallArgs&)> call;
};

// Python's str(): strings as they are, numbers as Python prints them, containers as repr.
Text ToText(const Value& v);
// Python's repr().
std::string Repr(const Value& v);
// Python's float repr ("1.0", "1e-05", "1.5e+16", "inf", "nan").
std::string FloatRepr(double d);

// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys),
// indent < 0 for none. InvalidArgument for what JSON cannot hold (undefined, functions).
absl::StatusOr<std::string> ToJson(const Value& v, int indent, bool sort_keys);

// The same with json.dumps' other parameters.
absl::StatusOr<std::string> ToJsonWith(const Value& v, int indent, bool sort_keys, bool ensure_ascii,
                                       std::string item_sep, std::string key_sep);
// Whether any string inside `v` came from outside the template.
bool AnyUntrusted(const Value& v);

// Python's ==, and < (InvalidArgument for types Python cannot order).
bool Equal(const Value& a, const Value& b);
absl::StatusOr<bool> Less(const Value& a, const Value& b);

// A JSON document as values (objects keep their key order). All strings untrusted.
absl::StatusOr<Value> FromJson(std::string_view json, std::string_view what);

}  // namespace reasonrt::chat

#endif  // REASONRT_LIB_CHAT_VALUE_H_
