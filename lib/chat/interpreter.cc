#include "lib/chat/interpreter.h"

#include <cmath>
#include <utility>

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"

namespace reasonrt::chat {
namespace {

// Nested Eval/Exec frames (stack use); templates of real models stay far below this.
constexpr int kMaxDepth = 400;

std::string TypeMessage(const Value& v) { return StrCat("'", v.TypeName(), "'"); }

}  // namespace

std::vector<size_t> CodePointOffsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(s.size());
  return offsets;
}

Interpreter::Interpreter(const ChatLimits& limits, Entries globals)
    : limits_(limits), globals_(std::move(globals)) {}

Interpreter::~Interpreter() {
  // Macros hold their defining scope and sit in it: break those cycles.
  for (auto& s : captured_) s->vars.clear();
  if (scope_) scope_->vars.clear();
}

absl::Status Interpreter::Error(std::string_view message) const {
  return absl::InvalidArgumentError(StrCat("chat template line ", line_, ": ", message));
}

absl::Status Interpreter::Exhausted(std::string_view what) const {
  return absl::ResourceExhaustedError(StrCat("chat template line ", line_, ": ", what));
}

absl::Status Interpreter::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    return Exhausted(StrCat("output larger than the limit of ", limits_.max_output_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::Built(size_t bytes) {
  RRT_RETURN_IF_ERROR(CheckSize(bytes));
  built_bytes_ += bytes;
  if (built_bytes_ > 64 * static_cast<uint64_t>(limits_.max_output_bytes)) {
    return Exhausted(StrCat("the template built more than ", 64 * static_cast<uint64_t>(limits_.max_output_bytes),
                            " bytes of strings"));
  }
  return absl::OkStatus();
}

absl::Status Interpreter::CheckListSize(size_t n) const {
  if (n > static_cast<uint64_t>(limits_.max_loop_iterations)) {
    return Exhausted(StrCat("a list longer than ", limits_.max_loop_iterations, " items"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Value> Interpreter::MakeString(Text text) {
  RRT_RETURN_IF_ERROR(Built(text.bytes.size()));
  return Value::String(std::move(text));
}

absl::Status Interpreter::CountIterations(int64_t n) {
  iterations_ += n;
  if (iterations_ > limits_.max_loop_iterations) {
    return Exhausted(StrCat("more than ", limits_.max_loop_iterations, " loop iterations"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Text> Interpreter::Render(const Body& body) {
  scope_ = std::make_shared<Scope>();
  Text out;
  RRT_ASSIGN_OR_RETURN(Flow flow, Exec(body, out));
  (void)flow;
  return out;
}

Value Interpreter::Lookup(std::string_view name) const {
  for (const Scope* s = scope_.get(); s != nullptr; s = s->parent.get()) {
    for (const auto& [k, v] : s->vars) {
      if (k == name) return v;
    }
  }
  for (const auto& [k, v] : globals_) {
    if (k == name) return v;
  }
  return Value::Undefined(StrCat("'", name, "' is undefined"));
}

void Interpreter::Assign(const std::string& name, Value value) {
  for (auto& [k, v] : scope_->vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  scope_->vars.emplace_back(name, std::move(value));
}

absl::StatusOr<Interpreter::Flow> Interpreter::Exec(const Body& body, Text& out) {
  if (++depth_ > kMaxDepth) return Exhausted("template nested too deeply");
  for (const auto& node : body) {
    auto flow = ExecNode(*node, out);
    if (!flow.ok() || *flow != Flow::kNormal) {
      --depth_;
      return flow;
    }
  }
  --depth_;
  return Flow::kNormal;
}

absl::StatusOr<Interpreter::Flow> Interpreter::ExecNode(const Node& node, Text& out) {
  line_ = node.line;
  switch (node.kind) {
    case Node::Kind::kText:
      out.Append(node.text, true);
      RRT_RETURN_IF_ERROR(CheckSize(out.bytes.size()));
      return Flow::kNormal;
    case Node::Kind::kOutput: {
      RRT_ASSIGN_OR_RETURN(Value v, Eval(*node.expr));
      out.Append(ToText(v));
      RRT_RETURN_IF_ERROR(CheckSize(out.bytes.size()));
      return Flow::kNormal;
    }
    case Node::Kind::kIf:
      for (const auto& [cond, body] : node.branches) {
        RRT_ASSIGN_OR_RETURN(Value c, Eval(*cond));
        if (c.Truthy()) return Exec(body, out);
      }
      return Exec(node.else_body, out);
    case Node::Kind::kFor: return ExecFor(node, out);
    case Node::Kind::kSet: {
      RRT_ASSIGN_OR_RETURN(Value v, Eval(*node.expr));
      line_ = node.line;
      RRT_RETURN_IF_ERROR(ExecSet(node, std::move(v)));
      return Flow::kNormal;
    }
    case Node::Kind::kSetBlock: {
      Text inner;
      RRT_ASSIGN_OR_RETURN(Flow flow, Exec(node.body, inner));
      (void)flow;
      Assign(node.targets[0], Value::String(std::move(inner)));
      return Flow::kNormal;
    }
    case Node::Kind::kMacro: {
      RRT_ASSIGN_OR_RETURN(Value m, MakeMacro(node));
      Assign(node.name, std::move(m));
      return Flow::kNormal;
    }
    case Node::Kind::kBreak: return Flow::kBreak;
    case Node::Kind::kContinue: return Flow::kContinue;
    case Node::Kind::kScope: return Exec(node.body, out);
  }
  return Flow::kNormal;
}

absl::Status Interpreter::ExecSet(const Node& node, Value value) {
  if (!node.attribute.empty()) {
    const Value target = Lookup(node.targets[0]);
    if (!target.is_namespace()) {
      return Error(StrCat("cannot assign attribute '", node.attribute, "' on ", TypeMessage(target),
                          " (only on a namespace())"));
    }
    for (auto& [k, v] : target.mutable_entries()) {
      if (k == node.attribute) {
        v = std::move(value);
        return absl::OkStatus();
      }
    }
    target.mutable_entries().emplace_back(node.attribute, std::move(value));
    return absl::OkStatus();
  }
  if (node.targets.size() == 1) {
    Assign(node.targets[0], std::move(value));
    return absl::OkStatus();
  }
  RRT_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(value));
  if (items.size() != node.targets.size()) {
    return Error(StrCat("cannot unpack ", items.size(), " values into ", node.targets.size(), " names"));
  }
  for (size_t i = 0; i < items.size(); ++i) Assign(node.targets[i], std::move(items[i]));
  return absl::OkStatus();
}

namespace {

// Restores the interpreter's scope when a loop body or macro ends, errors included.
struct ScopeGuard {
  std::shared_ptr<Scope>& slot;
  std::shared_ptr<Scope> saved;
  ScopeGuard(std::shared_ptr<Scope>& s, std::shared_ptr<Scope> next) : slot(s), saved(s) { slot = std::move(next); }
  ~ScopeGuard() { slot = std::move(saved); }
};

}  // namespace

absl::StatusOr<Interpreter::Flow> Interpreter::ExecFor(const Node& node, Text& out) {
  RRT_ASSIGN_OR_RETURN(Value iterable, Eval(*node.expr));
  RRT_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(iterable));
  auto bind = [&](Scope& s, const Value& item) -> absl::Status {
    if (node.targets.size() == 1) {
      s.vars.emplace_back(node.targets[0], item);
      return absl::OkStatus();
    }
    RRT_ASSIGN_OR_RETURN(std::vector<Value> parts, Iterate(item));
    if (parts.size() != node.targets.size()) {
      return Error(StrCat("cannot unpack ", parts.size(), " values into ", node.targets.size(), " loop variables"));
    }
    for (size_t i = 0; i < parts.size(); ++i) s.vars.emplace_back(node.targets[i], std::move(parts[i]));
    return absl::OkStatus();
  };
  const std::shared_ptr<Scope> parent = scope_;
  if (node.filter) {
    std::vector<Value> kept;
    for (Value& item : items) {
      RRT_RETURN_IF_ERROR(CountIterations(1));
      auto s = std::make_shared<Scope>();
      s->parent = parent;
      RRT_RETURN_IF_ERROR(bind(*s, item));
      ScopeGuard guard(scope_, s);
      RRT_ASSIGN_OR_RETURN(Value keep, Eval(*node.filter));
      if (keep.Truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    RRT_RETURN_IF_ERROR(CountIterations(1));
    auto s = std::make_shared<Scope>();
    s->parent = parent;
    RRT_RETURN_IF_ERROR(bind(*s, items[i]));
    auto cycle = std::make_shared<Function>();
    cycle->name = "loop.cycle";
    cycle->call = [i](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
      if (args.positional.empty()) return in.Error("loop.cycle() needs at least one value");
      return args.positional[static_cast<size_t>(i) % args.positional.size()];
    };
    Entries loop = {
        {"index", Value::Int(i + 1)},
        {"index0", Value::Int(i)},
        {"revindex", Value::Int(n - i)},
        {"revindex0", Value::Int(n - i - 1)},
        {"first", Value::Bool(i == 0)},
        {"last", Value::Bool(i == n - 1)},
        {"length", Value::Int(n)},
        {"depth", Value::Int(1)},
        {"depth0", Value::Int(0)},
        {"previtem", i > 0 ? items[i - 1] : Value::Undefined("there is no previous item")},
        {"nextitem", i + 1 < n ? items[i + 1] : Value::Undefined("there is no next item")},
        {"cycle", Value::MakeFunction(std::move(cycle))},
    };
    s->vars.emplace_back("loop", Value::MakeDict(std::move(loop)));
    ScopeGuard guard(scope_, s);
    RRT_ASSIGN_OR_RETURN(Flow flow, Exec(node.body, out));
    if (flow == Flow::kBreak) break;
  }
  if (n == 0 && !node.else_body.empty()) {
    auto s = std::make_shared<Scope>();
    s->parent = parent;
    ScopeGuard guard(scope_, s);
    RRT_ASSIGN_OR_RETURN(Flow flow, Exec(node.else_body, out));
    (void)flow;
  }
  return Flow::kNormal;
}

absl::StatusOr<Value> Interpreter::MakeMacro(const Node& node) {
  captured_.push_back(scope_);
  auto f = std::make_shared<Function>();
  f->name = node.name;
  std::weak_ptr<Scope> defining = scope_;
  f->call = [this, &node, defining](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    if (args.positional.size() > node.params.size()) {
      return Error(StrCat("macro '", node.name, "' takes ", node.params.size(), " arguments, got ",
                          args.positional.size()));
    }
    if (call_depth_ >= limits_.max_call_depth) {
      return Exhausted(StrCat("macro calls nested deeper than ", limits_.max_call_depth));
    }
    auto s = std::make_shared<Scope>();
    s->parent = defining.lock();
    for (const auto& [key, value] : args.keywords) {
      bool known = false;
      for (const auto& p : node.params) known |= p.first == key;
      if (!known) return Error(StrCat("macro '", node.name, "' has no parameter '", key, "'"));
    }
    ScopeGuard guard(scope_, s);
    for (size_t p = 0; p < node.params.size(); ++p) {
      const auto& [param, default_expr] = node.params[p];
      Value v = Value::Undefined(StrCat("'", param, "' is undefined"));
      bool given = false;
      if (p < args.positional.size()) {
        v = args.positional[p];
        given = true;
      }
      for (const auto& [key, value] : args.keywords) {
        if (key == param) {
          v = value;
          given = true;
        }
      }
      if (!given && default_expr) {
        RRT_ASSIGN_OR_RETURN(v, Eval(*default_expr));
      }
      s->vars.emplace_back(param, std::move(v));
    }
    ++call_depth_;
    Text out;
    const int caller_line = line_;
    auto flow = Exec(node.body, out);
    --call_depth_;
    line_ = caller_line;
    if (!flow.ok()) return flow.status();
    return Value::String(std::move(out));
  };
  return Value::MakeFunction(std::move(f));
}

absl::StatusOr<std::vector<Value>> Interpreter::Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return std::vector<Value>{};
    case Value::Kind::kList: return v.list();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, item] : v.entries()) keys.push_back(Value::String(k, /*trusted=*/false));
      return keys;
    }
    case Value::Kind::kString: {
      const std::vector<size_t> cp = CodePointOffsets(v.str());
      std::vector<Value> chars;
      const bool trusted = v.text().trusted();
      for (size_t i = 0; i + 1 < cp.size(); ++i) {
        chars.push_back(Value::String(v.str().substr(cp[i], cp[i + 1] - cp[i]), trusted));
      }
      return chars;
    }
    default: return Error(StrCat(TypeMessage(v), " object is not iterable"));
  }
}

absl::StatusOr<Value> Interpreter::GetAttr(const Value& subject, std::string_view name) {
  if (subject.is_undefined()) return Error(subject.undefined_name());
  if (HasMethod(subject, name)) {
    auto f = std::make_shared<Function>();
    f->name = std::string(name);
    f->call = [subject, method = std::string(name)](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
      // String work counts against the budget (input scanned, output built).
      if (subject.is_string()) RRT_RETURN_IF_ERROR(in.Built(subject.str().size()));
      RRT_ASSIGN_OR_RETURN(Value result, CallMethod(in, subject, method, args));
      if (result.is_string()) RRT_RETURN_IF_ERROR(in.Built(result.str().size()));
      return result;
    };
    return Value::MakeFunction(std::move(f));
  }
  if (subject.is_dict()) {
    if (const Value* v = subject.Find(name)) return *v;
  }
  return Value::Undefined(StrCat("'", subject.TypeName(), " object' has no attribute '", name, "'"));
}

absl::StatusOr<Value> Interpreter::GetItem(const Value& subject, const Value& key) {
  if (subject.is_undefined()) return Error(subject.undefined_name());
  if (subject.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = subject.Find(key.str())) return *v;
      // jinja2 falls back to attributes: d['items'] on a dict without that key.
      if (HasMethod(subject, key.str())) return GetAttr(subject, key.str());
    }
    return Value::Undefined(StrCat("'dict object' has no attribute ", Repr(key)));
  }
  if ((subject.is_list() || subject.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.int_value();
    if (subject.is_list()) {
      const int64_t n = static_cast<int64_t>(subject.list().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Value::Undefined(StrCat("list index ", key.int_value(), " out of range"));
      return subject.list()[i];
    }
    const std::vector<size_t> cp = CodePointOffsets(subject.str());
    const int64_t n = static_cast<int64_t>(cp.size()) - 1;
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::Undefined(StrCat("string index ", key.int_value(), " out of range"));
    return Value::String(subject.str().substr(cp[i], cp[i + 1] - cp[i]), subject.text().trusted());
  }
  if (key.is_string()) return GetAttr(subject, key.str());
  return Value::Undefined(StrCat(TypeMessage(subject), " object has no element ", Repr(key)));
}

absl::StatusOr<Value> Interpreter::EvalSlice(const Value& subject, const Value& start_v, const Value& stop_v,
                                             const Value& step_v) {
  if (subject.is_undefined()) return Error(subject.undefined_name());
  auto as_index = [&](const Value& v, std::optional<int64_t>* out) -> absl::Status {
    if (v.is_undefined() || v.is_none()) return absl::OkStatus();
    if (!v.is_int() && !v.is_bool()) return Error("slice indices must be integers or None");
    *out = v.int_value();
    return absl::OkStatus();
  };
  std::optional<int64_t> start, stop, step_opt;
  RRT_RETURN_IF_ERROR(as_index(start_v, &start));
  RRT_RETURN_IF_ERROR(as_index(stop_v, &stop));
  RRT_RETURN_IF_ERROR(as_index(step_v, &step_opt));
  const int64_t step = step_opt.value_or(1);
  if (step == 0) return Error("slice step cannot be zero");
  std::vector<size_t> cp;
  int64_t n = 0;
  if (subject.is_list()) {
    n = static_cast<int64_t>(subject.list().size());
  } else if (subject.is_string()) {
    cp = CodePointOffsets(subject.str());
    n = static_cast<int64_t>(cp.size()) - 1;
  } else {
    return Error(StrCat(TypeMessage(subject), " object is not subscriptable"));
  }
  // Python's slice index adjustment.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) {
      x += n;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= n) {
      x = step < 0 ? n - 1 : n;
    }
    return x;
  };
  const int64_t lo = adjust(start, step < 0 ? n - 1 : 0);
  const int64_t hi = adjust(stop, step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) picks.push_back(i);
  if (subject.is_list()) {
    List items;
    for (int64_t i : picks) items.push_back(subject.list()[i]);
    return Value::MakeList(std::move(items), subject.is_tuple());
  }
  std::string s;
  for (int64_t i : picks) s += subject.str().substr(cp[i], cp[i + 1] - cp[i]);
  return Value::String(std::move(s), subject.text().trusted());
}

absl::StatusOr<Value> Interpreter::Call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) return Error(callee.undefined_name());
  if (!callee.is_function()) return Error(StrCat(TypeMessage(callee), " object is not callable"));
  return callee.function().call(*this, args);
}

absl::Status Interpreter::EvalArgs(const Expr& e, size_t first, CallArgs& args) {
  for (size_t i = first; i < e.items.size(); ++i) {
    RRT_ASSIGN_OR_RETURN(Value v, Eval(*e.items[i]));
    args.positional.push_back(std::move(v));
  }
  for (const auto& [key, expr] : e.keywords) {
    RRT_ASSIGN_OR_RETURN(Value v, Eval(*expr));
    args.keywords.emplace_back(key, std::move(v));
  }
  return absl::OkStatus();
}

absl::StatusOr<Value> Interpreter::ApplyFilter(std::string_view name, Value subject, CallArgs& args) {
  if (subject.is_string()) RRT_RETURN_IF_ERROR(Built(subject.str().size()));
  RRT_ASSIGN_OR_RETURN(Value result, CallFilter(*this, name, std::move(subject), args));
  if (result.is_string()) RRT_RETURN_IF_ERROR(Built(result.str().size()));
  return result;
}

absl::StatusOr<bool> Interpreter::ApplyTest(std::string_view name, const Value& subject, CallArgs& args) {
  return CallTest(*this, name, subject, args);
}

absl::StatusOr<Value> Interpreter::Eval(const Expr& e) {
  if (++depth_ > kMaxDepth) {
    --depth_;
    return Exhausted("expression nested too deeply");
  }
  struct DepthGuard {
    int& d;
    ~DepthGuard() { --d; }
  } guard{depth_};
  line_ = e.line;
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.literal;
    case Expr::Kind::kName: return Lookup(e.name);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      List items;
      for (const auto& item : e.items) {
        RRT_ASSIGN_OR_RETURN(Value v, Eval(*item));
        items.push_back(std::move(v));
      }
      return Value::MakeList(std::move(items), e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      Entries entries;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        RRT_ASSIGN_OR_RETURN(Value key, Eval(*e.items[i]));
        RRT_ASSIGN_OR_RETURN(Value value, Eval(*e.items[i + 1]));
        if (!key.is_string()) return Error("dict keys must be strings in chat templates");
        bool replaced = false;
        for (auto& [k, v] : entries) {
          if (k == key.str()) {
            v = value;
            replaced = true;
          }
        }
        if (!replaced) entries.emplace_back(key.str(), std::move(value));
      }
      return Value::MakeDict(std::move(entries));
    }
    case Expr::Kind::kAttr: {
      RRT_ASSIGN_OR_RETURN(Value subject, Eval(*e.items[0]));
      line_ = e.line;
      return GetAttr(subject, e.name);
    }
    case Expr::Kind::kItem: {
      RRT_ASSIGN_OR_RETURN(Value subject, Eval(*e.items[0]));
      RRT_ASSIGN_OR_RETURN(Value key, Eval(*e.items[1]));
      line_ = e.line;
      return GetItem(subject, key);
    }
    case Expr::Kind::kSlice: {
      RRT_ASSIGN_OR_RETURN(Value subject, Eval(*e.items[0]));
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        if (e.items[i + 1]) {
          RRT_ASSIGN_OR_RETURN(parts[i], Eval(*e.items[i + 1]));
        }
      }
      line_ = e.line;
      return EvalSlice(subject, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: {
      RRT_ASSIGN_OR_RETURN(Value callee, Eval(*e.items[0]));
      CallArgs args;
      RRT_RETURN_IF_ERROR(EvalArgs(e, 1, args));
      line_ = e.line;
      return Call(callee, args);
    }
    case Expr::Kind::kFilter: {
      RRT_ASSIGN_OR_RETURN(Value subject, Eval(*e.items[0]));
      CallArgs args;
      RRT_RETURN_IF_ERROR(EvalArgs(e, 1, args));
      line_ = e.line;
      return ApplyFilter(e.name, std::move(subject), args);
    }
    case Expr::Kind::kTest: {
      RRT_ASSIGN_OR_RETURN(Value subject, Eval(*e.items[0]));
      CallArgs args;
      RRT_RETURN_IF_ERROR(EvalArgs(e, 1, args));
      line_ = e.line;
      RRT_ASSIGN_OR_RETURN(bool r, ApplyTest(e.name, subject, args));
      return Value::Bool(r != e.negated);
    }
    case Expr::Kind::kUnary: {
      RRT_ASSIGN_OR_RETURN(Value v, Eval(*e.items[0]));
      line_ = e.line;
      if (e.name == "not") return Value::Bool(!v.Truthy());
      if (v.is_undefined()) return Error(v.undefined_name());
      if (!v.is_number()) return Error(StrCat("bad operand type for unary ", e.name, ": ", TypeMessage(v)));
      if (e.name == "+") return v.is_bool() ? Value::Int(v.int_value()) : v;
      if (v.is_float()) return Value::Float(-v.number());
      if (v.int_value() == INT64_MIN) return Error("integer overflow");
      return Value::Int(-v.int_value());
    }
    case Expr::Kind::kBinary: {
      RRT_ASSIGN_OR_RETURN(Value a, Eval(*e.items[0]));
      if (e.name == "and") return a.Truthy() ? Eval(*e.items[1]) : a;
      if (e.name == "or") return a.Truthy() ? a : Eval(*e.items[1]);
      RRT_ASSIGN_OR_RETURN(Value b, Eval(*e.items[1]));
      line_ = e.line;
      return EvalBinary(e.name, a, b);
    }
    case Expr::Kind::kCompare: {
      RRT_ASSIGN_OR_RETURN(Value left, Eval(*e.items[0]));
      for (size_t i = 0; i < e.ops.size(); ++i) {
        RRT_ASSIGN_OR_RETURN(Value right, Eval(*e.items[i + 1]));
        line_ = e.line;
        RRT_ASSIGN_OR_RETURN(Value r, EvalCompare(e.ops[i], left, right));
        if (!r.Truthy()) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case Expr::Kind::kCondition: {
      RRT_ASSIGN_OR_RETURN(Value cond, Eval(*e.items[0]));
      if (cond.Truthy()) return Eval(*e.items[1]);
      if (e.items[2]) return Eval(*e.items[2]);
      return Value::Undefined("the inline if expression's condition was false and it has no else");
    }
  }
  return Error("unknown expression");
}

absl::StatusOr<Value> Interpreter::EvalCompare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Value::Bool(Equal(a, b));
  if (op == "!=") return Value::Bool(!Equal(a, b));
  if (op == "in" || op == "not in") {
    bool found = false;
    if (b.is_string()) {
      if (a.is_undefined()) return Error(a.undefined_name());
      if (!a.is_string()) return Error(StrCat("'in <string>' requires string as left operand, not ", a.TypeName()));
      RRT_RETURN_IF_ERROR(Built(b.str().size()));
      found = b.str().find(a.str()) != std::string::npos;
    } else if (b.is_list()) {
      for (const Value& item : b.list()) found = found || Equal(a, item);
    } else if (b.is_dict()) {
      found = a.is_string() && b.Find(a.str()) != nullptr;
    } else if (!b.is_undefined()) {
      return Error(StrCat("argument of type ", TypeMessage(b), " is not iterable"));
    }
    return Value::Bool(found == (op == "in"));
  }
  if (a.is_undefined()) return Error(a.undefined_name());
  if (b.is_undefined()) return Error(b.undefined_name());
  absl::StatusOr<bool> r = op == "<" || op == ">=" ? Less(a, b) : Less(b, a);
  if (!r.ok()) {
    return Error(StrCat("'", op, "' not supported between instances of ", TypeMessage(a), " and ", TypeMessage(b)));
  }
  if (op == "<" || op == ">") return Value::Bool(*r);
  return Value::Bool(!*r);  // a <= b is not (b < a); a >= b is not (a < b)
}

absl::StatusOr<Value> Interpreter::EvalBinary(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    Text t = ToText(a);
    t.Append(ToText(b));
    return MakeString(std::move(t));
  }
  if (a.is_undefined()) return Error(a.undefined_name());
  if (b.is_undefined()) return Error(b.undefined_name());
  auto unsupported = [&]() {
    return Error(StrCat("unsupported operand type(s) for ", op, ": ", TypeMessage(a), " and ", TypeMessage(b)));
  };
  const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  if (a.is_number() && b.is_number()) {
    const int64_t x = a.int_value(), y = b.int_value();
    const double fx = a.number(), fy = b.number();
    int64_t r = 0;
    if (op == "+") {
      if (!ints) return Value::Float(fx + fy);
      if (__builtin_add_overflow(x, y, &r)) return Error("integer overflow");
      return Value::Int(r);
    }
    if (op == "-") {
      if (!ints) return Value::Float(fx - fy);
      if (__builtin_sub_overflow(x, y, &r)) return Error("integer overflow");
      return Value::Int(r);
    }
    if (op == "*") {
      if (!ints) return Value::Float(fx * fy);
      if (__builtin_mul_overflow(x, y, &r)) return Error("integer overflow");
      return Value::Int(r);
    }
    if (op == "/") {
      if (fy == 0) return Error("division by zero");
      return Value::Float(fx / fy);
    }
    if (op == "//" || op == "%") {
      if (ints ? y == 0 : fy == 0) return Error(op == "%" ? "modulo by zero" : "integer division by zero");
      if (ints) {
        if (x == INT64_MIN && y == -1) return Error("integer overflow");
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::Int(op == "//" ? q : m);
      }
      // Python's float divmod.
      double m = std::fmod(fx, fy);
      double div = (fx - m) / fy;
      if (m != 0) {
        if ((fy < 0) != (m < 0)) {
          m += fy;
          div -= 1.0;
        }
      } else {
        m = std::copysign(0.0, fy);
      }
      if (op == "%") return Value::Float(m);
      double floor_div = std::copysign(0.0, fx / fy);
      if (div != 0) {
        floor_div = std::floor(div);
        if (div - floor_div > 0.5) floor_div += 1.0;
      }
      return Value::Float(floor_div);
    }
    if (op == "**") {
      if (ints && y >= 0) {
        int64_t result = 1, base = x;
        for (int64_t e = y; e > 0; e >>= 1) {
          if ((e & 1) && __builtin_mul_overflow(result, base, &result)) return Error("integer overflow");
          if (e > 1 && __builtin_mul_overflow(base, base, &base)) return Error("integer overflow");
        }
        return Value::Int(result);
      }
      if (fx == 0 && fy < 0) return Error("0.0 cannot be raised to a negative power");
      return Value::Float(std::pow(fx, fy));
    }
    return unsupported();
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      Text t = a.text();
      RRT_RETURN_IF_ERROR(Built(t.bytes.size() + b.str().size()));
      t.Append(b.text());
      return Value::String(std::move(t));
    }
    if (a.is_list() && b.is_list()) {
      RRT_RETURN_IF_ERROR(CheckListSize(a.list().size() + b.list().size()));
      List items = a.list();
      items.insert(items.end(), b.list().begin(), b.list().end());
      return Value::MakeList(std::move(items), a.is_tuple() && b.is_tuple());
    }
    if (a.is_string()) return Error(StrCat("can only concatenate str (not \"", b.TypeName(), "\") to str"));
    return unsupported();
  }
  if (op == "*") {
    const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq == nullptr || !(count->is_int() || count->is_bool())) return unsupported();
    const int64_t times = std::max<int64_t>(0, count->int_value());
    const size_t unit = seq->is_string() ? seq->str().size() : seq->list().size();
    const uint64_t cap = seq->is_string() ? limits_.max_output_bytes : static_cast<uint64_t>(limits_.max_loop_iterations);
    if (unit != 0 && static_cast<uint64_t>(times) > cap / unit) {
      return Exhausted(StrCat("repetition larger than the limit of ", cap, seq->is_string() ? " bytes" : " items"));
    }
    if (seq->is_string()) RRT_RETURN_IF_ERROR(Built(unit * times));
    if (seq->is_string()) {
      Text t;
      for (int64_t i = 0; i < times; ++i) t.Append(seq->text());
      return Value::String(std::move(t));
    }
    List items;
    for (int64_t i = 0; i < times; ++i) items.insert(items.end(), seq->list().begin(), seq->list().end());
    return Value::MakeList(std::move(items), seq->is_tuple());
  }
  if (op == "%" && a.is_string()) return Error("printf-style formatting with '%' is not supported");
  return unsupported();
}

}  // namespace reasonrt::chat
