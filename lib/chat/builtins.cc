// The methods, filters, tests and globals chat templates use, with the behaviour of
// Python's str/dict methods and jinja2's builtin filters and tests.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "lib/chat/interpreter.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "utf8proc.h"

namespace reasonrt::chat {
namespace {

// --- Unicode helpers -------------------------------------------------------------------

std::vector<int32_t> Decode(std::string_view s) {
  std::vector<int32_t> cps;
  size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                          static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0) {
      cp = 0xfffd;
      n = 1;
    }
    cps.push_back(cp);
    i += n;
  }
  return cps;
}

std::string Encode(const std::vector<int32_t>& cps) {
  std::string out;
  utf8proc_uint8_t buf[4];
  for (int32_t cp : cps) out.append(reinterpret_cast<char*>(buf), utf8proc_encode_char(cp, buf));
  return out;
}

// Python's str.isspace() for one code point.
bool IsPySpace(int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0) return true;
  if (cp < 0x1680) return false;
  return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

bool IsLineBreak(int32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d || cp == 0x1e ||
         cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

bool IsCased(int32_t cp) { return utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp || utf8proc_totitle(cp) != cp; }

std::string Upper(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  for (int32_t& c : cps) c = utf8proc_toupper(c);
  return Encode(cps);
}

std::string Lower(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  for (int32_t& c : cps) c = utf8proc_tolower(c);
  return Encode(cps);
}

std::string Capitalize(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  for (size_t i = 0; i < cps.size(); ++i) cps[i] = i == 0 ? utf8proc_totitle(cps[i]) : utf8proc_tolower(cps[i]);
  return Encode(cps);
}

// Python's str.title(): a cased character after an uncased one starts a word.
std::string PyTitle(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  bool prev_cased = false;
  for (int32_t& c : cps) {
    const bool cased = IsCased(c);
    c = cased ? (prev_cased ? utf8proc_tolower(c) : utf8proc_totitle(c)) : c;
    prev_cased = cased;
  }
  return Encode(cps);
}

// jinja2's title filter: words start after whitespace or one of -({[<.
std::string JinjaTitle(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  bool start = true;
  for (int32_t& c : cps) {
    const bool sep = IsPySpace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      start = true;
    } else {
      c = start ? utf8proc_toupper(c) : utf8proc_tolower(c);
      start = false;
    }
  }
  return Encode(cps);
}

// strip/lstrip/rstrip with Python's rules: whitespace, or the code points of `chars`.
std::string Strip(std::string_view s, const Value* chars, bool left, bool right) {
  const bool whitespace_only = chars == nullptr || chars->is_none() || chars->is_undefined();
  if (whitespace_only) {
    // Fast path: ASCII ends (a non-ASCII end byte goes the full way).
    size_t b = 0, e = s.size();
    auto ascii_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f); };
    if (left) {
      while (b < e && ascii_space(s[b])) ++b;
    }
    if (right) {
      while (e > b && ascii_space(s[e - 1])) --e;
    }
    const bool left_done = !left || b == e || static_cast<unsigned char>(s[b]) < 0x80;
    const bool right_done = !right || b == e || static_cast<unsigned char>(s[e - 1]) < 0x80;
    if (left_done && right_done) return std::string(s.substr(b, e - b));
  }
  std::vector<int32_t> cps = Decode(s);
  std::vector<int32_t> set;
  const bool whitespace = chars == nullptr || chars->is_none() || chars->is_undefined();
  if (!whitespace) set = Decode(chars->str());
  auto strip_it = [&](int32_t c) {
    return whitespace ? IsPySpace(c) : std::find(set.begin(), set.end(), c) != set.end();
  };
  size_t b = 0, e = cps.size();
  if (left) {
    while (b < e && strip_it(cps[b])) ++b;
  }
  if (right) {
    while (e > b && strip_it(cps[e - 1])) --e;
  }
  return Encode(std::vector<int32_t>(cps.begin() + b, cps.begin() + e));
}

std::vector<std::string> SplitLines(std::string_view s) {
  std::vector<int32_t> cps = Decode(s);
  std::vector<std::string> lines;
  std::vector<int32_t> cur;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (IsLineBreak(cps[i])) {
      if (cps[i] == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
      lines.push_back(Encode(cur));
      cur.clear();
    } else {
      cur.push_back(cps[i]);
    }
  }
  if (!cur.empty()) lines.push_back(Encode(cur));
  return lines;
}

// --- argument helpers --------------------------------------------------------------------

// The i-th argument, given by position or by keyword `name`; nullptr when absent.
const Value* Arg(const CallArgs& args, size_t i, std::string_view name) {
  for (const auto& [k, v] : args.keywords) {
    if (k == name) return &v;
  }
  if (i < args.positional.size()) return &args.positional[i];
  return nullptr;
}

bool ArgBool(const CallArgs& args, size_t i, std::string_view name, bool dflt) {
  const Value* v = Arg(args, i, name);
  return v ? v->Truthy() : dflt;
}

absl::StatusOr<std::string> ArgString(Interpreter& in, const CallArgs& args, size_t i, std::string_view name,
                                      std::string_view what) {
  const Value* v = Arg(args, i, name);
  if (v == nullptr || !v->is_string()) {
    return in.Error(StrCat(what, ": argument '", name, "' must be a string"));
  }
  return v->str();
}

bool AllTrusted(const Value& self, const CallArgs& args) {
  if (AnyUntrusted(self)) return false;
  for (const Value& v : args.positional) {
    if (AnyUntrusted(v)) return false;
  }
  for (const auto& [k, v] : args.keywords) {
    if (AnyUntrusted(v)) return false;
  }
  return true;
}

Value Str(std::string s, bool trusted) { return Value::String(std::move(s), trusted); }

// Python's str.split / rsplit.
absl::StatusOr<Value> Split(Interpreter& in, const Value& self, const CallArgs& args, bool from_right) {
  const bool trusted = AllTrusted(self, args);
  const Value* sep = Arg(args, 0, "sep");
  const Value* max_v = Arg(args, 1, "maxsplit");
  int64_t maxsplit = max_v && (max_v->is_int() || max_v->is_bool()) ? max_v->int_value() : -1;
  std::vector<std::string> parts;
  const std::string& s = self.str();
  if (sep == nullptr || sep->is_none()) {
    std::vector<int32_t> cps = Decode(s);
    std::vector<std::vector<int32_t>> words;
    if (!from_right) {
      size_t i = 0;
      while (i < cps.size()) {
        while (i < cps.size() && IsPySpace(cps[i])) ++i;
        if (i == cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t e = cps.size();
          while (e > i && IsPySpace(cps[e - 1])) --e;
          words.emplace_back(cps.begin() + i, cps.begin() + e);
          break;
        }
        size_t j = i;
        while (j < cps.size() && !IsPySpace(cps[j])) ++j;
        words.emplace_back(cps.begin() + i, cps.begin() + j);
        i = j;
      }
    } else {
      size_t i = cps.size();
      while (i > 0) {
        while (i > 0 && IsPySpace(cps[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t b = 0;
          while (b < i && IsPySpace(cps[b])) ++b;
          words.emplace_back(cps.begin() + b, cps.begin() + i);
          break;
        }
        size_t j = i;
        while (j > 0 && !IsPySpace(cps[j - 1])) --j;
        words.emplace_back(cps.begin() + j, cps.begin() + i);
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (const auto& w : words) parts.push_back(Encode(w));
  } else {
    if (!sep->is_string()) return in.Error("split: separator must be a string");
    const std::string& d = sep->str();
    if (d.empty()) return in.Error("split: empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (true) {
        const size_t hit = s.find(d, pos);
        if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(pos));
          break;
        }
        parts.push_back(s.substr(pos, hit - pos));
        pos = hit + d.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        const size_t hit = end >= d.size() ? s.rfind(d, end - d.size()) : std::string::npos;
        if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(hit + d.size(), end - hit - d.size()));
        end = hit;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  RRT_RETURN_IF_ERROR(in.CountIterations(static_cast<int64_t>(parts.size())));
  List items;
  for (auto& p : parts) items.push_back(Str(std::move(p), trusted));
  return Value::MakeList(std::move(items));
}

std::string Replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  if (old.empty()) {
    // Python inserts `with` between every code point (and at both ends).
    const std::vector<size_t> cp = CodePointOffsets(s);
    std::string out;
    int64_t done = 0;
    for (size_t i = 0; i < cp.size(); ++i) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      if (i + 1 < cp.size()) out += s.substr(cp[i], cp[i + 1] - cp[i]);
    }
    return out;
  }
  std::string out;
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out += s.substr(pos, hit - pos);
    out += with;
    pos = hit + old.size();
    ++done;
  }
  out += s.substr(pos);
  return out;
}

absl::StatusOr<Value> DoReplace(Interpreter& in, const Value& self, const CallArgs& args, std::string_view what) {
  RRT_ASSIGN_OR_RETURN(std::string old, ArgString(in, args, 0, "old", what));
  RRT_ASSIGN_OR_RETURN(std::string with, ArgString(in, args, 1, "new", what));
  const Value* count_v = Arg(args, 2, "count");
  const int64_t count = count_v && count_v->is_int() ? count_v->int_value() : -1;
  const size_t hits = old.empty() ? self.str().size() + 1 : 0;
  if (with.size() * std::max<size_t>(hits, 1) > in.limits().max_output_bytes) {
    return in.Exhausted("replace result larger than the output limit");
  }
  std::string out = Replace(self.str(), old, with, count);
  RRT_RETURN_IF_ERROR(in.Built(out.size()));
  return Str(std::move(out), AllTrusted(self, args));
}

// startswith/endswith with a string or a tuple of strings.
absl::StatusOr<Value> AffixTest(Interpreter& in, const Value& self, const CallArgs& args, bool prefix) {
  const Value* a = Arg(args, 0, "prefix");
  if (a == nullptr) return in.Error(prefix ? "startswith() needs an argument" : "endswith() needs an argument");
  std::vector<std::string> options;
  if (a->is_string()) {
    options.push_back(a->str());
  } else if (a->is_list()) {
    for (const Value& v : a->list()) {
      if (!v.is_string()) return in.Error("startswith/endswith: tuple items must be strings");
      options.push_back(v.str());
    }
  } else {
    return in.Error("startswith/endswith: argument must be a string or a tuple of strings");
  }
  const std::string& s = self.str();
  for (const std::string& o : options) {
    if (prefix ? s.compare(0, o.size(), o) == 0 && s.size() >= o.size()
               : s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

absl::StatusOr<Value> Join(Interpreter& in, const Value& sep, const std::vector<Value>& items,
                           const Value* attribute) {
  Text out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.Append(sep.text());
    if (attribute) {
      RRT_ASSIGN_OR_RETURN(Value v, in.GetItem(items[i], *attribute));
      out.Append(ToText(v));
    } else {
      out.Append(ToText(items[i]));
    }
    RRT_RETURN_IF_ERROR(in.CheckSize(out.bytes.size()));
  }
  RRT_RETURN_IF_ERROR(in.Built(out.bytes.size()));
  return Value::String(std::move(out));
}

int64_t CodePointCount(std::string_view s) { return static_cast<int64_t>(CodePointOffsets(s).size()) - 1; }

// --- methods ---------------------------------------------------------------------------

constexpr std::string_view kStringMethods[] = {
    "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "rsplit", "replace", "upper",
    "lower", "title", "capitalize", "find", "rfind", "count", "join", "splitlines", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix", "removesuffix", "index"};
constexpr std::string_view kDictMethods[] = {"items", "keys", "values", "get"};

}  // namespace

bool HasMethod(const Value& self, std::string_view name) {
  if (self.is_string()) {
    return std::find(std::begin(kStringMethods), std::end(kStringMethods), name) != std::end(kStringMethods);
  }
  if (self.kind() == Value::Kind::kDict) {
    return std::find(std::begin(kDictMethods), std::end(kDictMethods), name) != std::end(kDictMethods);
  }
  return false;
}

absl::StatusOr<Value> CallMethod(Interpreter& in, const Value& self, std::string_view name, CallArgs& args) {
  if (self.is_dict()) {
    if (name == "get") {
      const Value* key = Arg(args, 0, "key");
      if (key == nullptr) return in.Error("get() needs a key");
      if (key->is_string()) {
        if (const Value* v = self.Find(key->str())) return *v;
      }
      const Value* dflt = Arg(args, 1, "default");
      return dflt ? *dflt : Value::None();
    }
    List items;
    RRT_RETURN_IF_ERROR(in.CountIterations(static_cast<int64_t>(self.entries().size())));
    for (const auto& [k, v] : self.entries()) {
      if (name == "keys") {
        items.push_back(Str(k, false));
      } else if (name == "values") {
        items.push_back(v);
      } else {
        items.push_back(Value::MakeList({Str(k, false), v}, /*tuple=*/true));
      }
    }
    return Value::MakeList(std::move(items));
  }
  const std::string& s = self.str();
  const bool trusted = AllTrusted(self, args);
  if (name == "startswith") return AffixTest(in, self, args, true);
  if (name == "endswith") return AffixTest(in, self, args, false);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value* chars = Arg(args, 0, "chars");
    if (chars && !chars->is_string() && !chars->is_none()) return in.Error(StrCat(name, ": chars must be a string"));
    return Str(Strip(s, chars, name != "rstrip", name != "lstrip"), trusted);
  }
  if (name == "split") return Split(in, self, args, false);
  if (name == "rsplit") return Split(in, self, args, true);
  if (name == "replace") return DoReplace(in, self, args, "replace");
  if (name == "upper") return Str(Upper(s), trusted);
  if (name == "lower") return Str(Lower(s), trusted);
  if (name == "title") return Str(PyTitle(s), trusted);
  if (name == "capitalize") return Str(Capitalize(s), trusted);
  if (name == "find" || name == "rfind" || name == "index" || name == "count") {
    RRT_ASSIGN_OR_RETURN(std::string sub, ArgString(in, args, 0, "sub", name));
    if (name == "count") {
      if (sub.empty()) return Value::Int(CodePointCount(s) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::Int(n);
    }
    const size_t hit = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (hit == std::string::npos) {
      if (name == "index") return in.Error("index(): substring not found");
      return Value::Int(-1);
    }
    return Value::Int(CodePointCount(std::string_view(s).substr(0, hit)));
  }
  if (name == "join") {
    const Value* items = Arg(args, 0, "iterable");
    if (items == nullptr) return in.Error("join() needs an iterable");
    RRT_ASSIGN_OR_RETURN(std::vector<Value> list, in.Iterate(*items));
    for (const Value& v : list) {
      if (!v.is_string()) return in.Error(StrCat("join(): expected str instance, ", v.TypeName(), " found"));
    }
    return Join(in, self, list, nullptr);
  }
  if (name == "splitlines") {
    List items;
    for (auto& line : SplitLines(s)) items.push_back(Str(std::move(line), trusted));
    return Value::MakeList(std::move(items));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    RRT_ASSIGN_OR_RETURN(std::string affix, ArgString(in, args, 0, name == "removeprefix" ? "prefix" : "suffix", name));
    if (name == "removeprefix" && s.compare(0, affix.size(), affix) == 0 && s.size() >= affix.size()) {
      return Str(s.substr(affix.size()), trusted);
    }
    if (name == "removesuffix" && !affix.empty() && s.size() >= affix.size() &&
        s.compare(s.size() - affix.size(), affix.size(), affix) == 0) {
      return Str(s.substr(0, s.size() - affix.size()), trusted);
    }
    return self;
  }
  // is* predicates: false for the empty string, as in Python.
  const std::vector<int32_t> cps = Decode(s);
  if (cps.empty()) return Value::Bool(false);
  auto all = [&](auto pred) { return Value::Bool(std::all_of(cps.begin(), cps.end(), pred)); };
  auto category = [](int32_t c) { return utf8proc_category(c); };
  auto is_alpha = [&](int32_t c) {
    const auto k = category(c);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_LO;
  };
  auto is_digit = [&](int32_t c) { return category(c) == UTF8PROC_CATEGORY_ND; };
  if (name == "isdigit") return all(is_digit);
  if (name == "isalpha") return all(is_alpha);
  if (name == "isalnum") return all([&](int32_t c) { return is_alpha(c) || is_digit(c); });
  if (name == "isspace") return all(IsPySpace);
  if (name == "islower" || name == "isupper") {
    bool any_cased = false, ok = true;
    for (int32_t c : cps) {
      if (!IsCased(c)) continue;
      any_cased = true;
      if (name == "islower" ? utf8proc_tolower(c) != c : utf8proc_toupper(c) != c) ok = false;
    }
    return Value::Bool(any_cased && ok);
  }
  return in.Error(StrCat("str has no method '", name, "'"));
}

// --- tests -----------------------------------------------------------------------------

absl::StatusOr<bool> CallTest(Interpreter& in, std::string_view name, const Value& v, CallArgs& args) {
  const Value* arg = Arg(args, 0, "other");
  auto need_arg = [&]() -> absl::Status {
    if (arg == nullptr) return in.Error(StrCat("test '", name, "' needs an argument"));
    return absl::OkStatus();
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.bool_value();
  if (name == "false") return v.is_bool() && !v.bool_value();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "sequence") return v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.is_function();
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    CallArgs none;
    RRT_ASSIGN_OR_RETURN(Value r, CallMethod(in, v, name == "lower" ? "islower" : "isupper", none));
    return r.bool_value();
  }
  if (name == "even" || name == "odd") {
    if (!v.is_int() && !v.is_bool()) return in.Error(StrCat("test '", name, "' needs an integer"));
    return (v.int_value() % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") {
    RRT_RETURN_IF_ERROR(need_arg());
    if (!v.is_int() || !arg->is_int() || arg->int_value() == 0) return in.Error("divisibleby needs non-zero integers");
    return v.int_value() % arg->int_value() == 0;
  }
  if (name == "sameas") {
    RRT_RETURN_IF_ERROR(need_arg());
    if (v.kind() != arg->kind()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool() || v.is_int()) return v.int_value() == arg->int_value();
    return v.is_dict() ? &v.entries() == &arg->entries() : false;
  }
  if (name == "in") {
    RRT_RETURN_IF_ERROR(need_arg());
    if (arg->is_string()) return v.is_string() && arg->str().find(v.str()) != std::string::npos;
    if (arg->is_list()) return std::any_of(arg->list().begin(), arg->list().end(), [&](const Value& x) { return Equal(v, x); });
    if (arg->is_dict()) return v.is_string() && arg->Find(v.str()) != nullptr;
    return in.Error("test 'in' needs a container");
  }
  static constexpr std::pair<std::string_view, std::string_view> kCompare[] = {
      {"eq", "=="}, {"equalto", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="},
      {"lt", "<"},  {"lessthan", "<"}, {"<", "<"},   {"le", "<="}, {"<=", "<="},
      {"gt", ">"},  {"greaterthan", ">"}, {">", ">"}, {"ge", ">="}, {">=", ">="}};
  for (const auto& [test, op] : kCompare) {
    if (name != test) continue;
    RRT_RETURN_IF_ERROR(need_arg());
    if (op == "==") return Equal(v, *arg);
    if (op == "!=") return !Equal(v, *arg);
    absl::StatusOr<bool> r = op == "<" || op == ">=" ? Less(v, *arg) : Less(*arg, v);
    if (!r.ok()) return in.Error(StrCat("test '", name, "': ", r.status().message()));
    return op == "<" || op == ">" ? *r : !*r;
  }
  return in.Error(StrCat("unknown test '", name, "'"));
}

// --- filters ---------------------------------------------------------------------------

namespace {

// Sort key comparison of jinja2's sort/dictsort/min/max: strings case-folded unless
// case_sensitive.
absl::StatusOr<bool> SortLess(Interpreter& in, const Value& a, const Value& b, bool case_sensitive) {
  if (!case_sensitive && a.is_string() && b.is_string()) return Lower(a.str()) < Lower(b.str());
  absl::StatusOr<bool> r = Less(a, b);
  if (!r.ok()) return in.Error(StrCat("sort: ", r.status().message()));
  return *r;
}

absl::StatusOr<Value> AttributeOf(Interpreter& in, const Value& item, const Value* attribute) {
  if (attribute == nullptr || attribute->is_none()) return item;
  if (attribute->is_int()) return in.GetItem(item, *attribute);
  if (!attribute->is_string()) return in.Error("attribute must be a string");
  // Dotted paths, and integer parts as indexes, as jinja2's make_attrgetter does.
  Value cur = item;
  std::string_view path = attribute->str();
  while (true) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    RRT_ASSIGN_OR_RETURN(cur, numeric ? in.GetItem(cur, Value::Int(std::stoll(part)))
                                      : in.GetItem(cur, Value::String(part, true)));
    if (dot == std::string_view::npos) break;
    path = path.substr(dot + 1);
  }
  return cur;
}

absl::StatusOr<std::vector<Value>> SortValues(Interpreter& in, std::vector<Value> items, bool reverse,
                                              bool case_sensitive, const Value* attribute) {
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& v : items) {
    RRT_ASSIGN_OR_RETURN(Value key, AttributeOf(in, v, attribute));
    keyed.emplace_back(std::move(key), std::move(v));
  }
  absl::Status error;
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    if (!error.ok()) return false;
    absl::StatusOr<bool> r = reverse ? SortLess(in, b.first, a.first, case_sensitive)
                                     : SortLess(in, a.first, b.first, case_sensitive);
    if (!r.ok()) {
      error = r.status();
      return false;
    }
    return *r;
  });
  RRT_RETURN_IF_ERROR(error);
  std::vector<Value> out;
  for (auto& [k, v] : keyed) out.push_back(std::move(v));
  return out;
}

// select/reject/selectattr/rejectattr: args are (attribute?, test name, test args...).
absl::StatusOr<Value> SelectFilter(Interpreter& in, const Value& subject, CallArgs& args, bool by_attribute,
                                   bool keep_if) {
  RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(subject));
  size_t next = 0;
  const Value* attribute = nullptr;
  if (by_attribute) {
    if (args.positional.empty()) return in.Error("selectattr/rejectattr need an attribute name");
    attribute = &args.positional[next++];
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return in.Error("select: test name must be a string");
    test = args.positional[next++].str();
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + next, args.positional.end());
  List kept;
  for (const Value& item : items) {
    RRT_ASSIGN_OR_RETURN(Value v, AttributeOf(in, item, attribute));
    bool pass = v.Truthy();
    if (!test.empty()) {
      RRT_ASSIGN_OR_RETURN(pass, in.ApplyTest(test, v, test_args));
    }
    if (pass == keep_if) kept.push_back(item);
  }
  return Value::MakeList(std::move(kept));
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

absl::StatusOr<Value> ToJsonFilter(Interpreter& in, const Value& subject, const CallArgs& args) {
  // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const bool ensure_ascii = ArgBool(args, 0, "ensure_ascii", false);
  const Value* indent_v = Arg(args, 1, "indent");
  int indent = -1;
  if (indent_v && !indent_v->is_none()) {
    if (!indent_v->is_int()) return in.Error("tojson: indent must be an integer");
    indent = static_cast<int>(std::clamp<int64_t>(indent_v->int_value(), 0, 64));
  }
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  const Value* seps = Arg(args, 2, "separators");
  if (seps && !seps->is_none()) {
    if (!seps->is_list() || seps->list().size() != 2 || !seps->list()[0].is_string() || !seps->list()[1].is_string()) {
      return in.Error("tojson: separators must be a pair of strings");
    }
    item_sep = seps->list()[0].str();
    key_sep = seps->list()[1].str();
  }
  const bool sort_keys = ArgBool(args, 3, "sort_keys", false);
  absl::StatusOr<std::string> json = ToJsonWith(subject, indent, sort_keys, ensure_ascii, item_sep, key_sep);
  if (!json.ok()) return in.Error(ToStd(json.status().message()));
  RRT_RETURN_IF_ERROR(in.Built(json->size()));
  return Str(std::move(*json), !AnyUntrusted(subject));
}

absl::StatusOr<Value> Indent(Interpreter& in, const Value& subject, const CallArgs& args) {
  const Value* width = Arg(args, 0, "width");
  std::string indention(4, ' ');
  if (width && width->is_string()) {
    indention = width->str();
  } else if (width && width->is_int()) {
    indention.assign(static_cast<size_t>(std::clamp<int64_t>(width->int_value(), 0, 1024)), ' ');
  }
  const bool first = ArgBool(args, 1, "first", false);
  const bool blank = ArgBool(args, 2, "blank", false);
  const std::string s = ToText(subject).bytes + "\n";
  const std::vector<std::string> lines = SplitLines(s);
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) rv += (i ? "\n" + indention : "") + lines[i];
  } else {
    rv = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        rv += lines[i].empty() ? lines[i] : indention + lines[i];
      }
    }
  }
  if (first) rv = indention + rv;
  RRT_RETURN_IF_ERROR(in.Built(rv.size()));
  return Str(std::move(rv), !AnyUntrusted(subject));
}

}  // namespace

absl::StatusOr<Value> CallFilter(Interpreter& in, std::string_view name, Value v, CallArgs& args) {
  if (name == "default" || name == "d") {
    const bool boolean = ArgBool(args, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.Truthy())) {
      const Value* dflt = Arg(args, 0, "default_value");
      return dflt ? *dflt : Str("", true);
    }
    return v;
  }
  if (name == "tojson") return ToJsonFilter(in, v, args);
  if (name == "safe") return v;
  if (name == "string") return in.MakeString(ToText(v));
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::Int(CodePointCount(v.str()));
    if (v.is_list()) return Value::Int(static_cast<int64_t>(v.list().size()));
    if (v.is_dict()) return Value::Int(static_cast<int64_t>(v.entries().size()));
    if (v.is_undefined()) return Value::Int(0);
    return in.Error(StrCat("object of type '", v.TypeName(), "' has no len()"));
  }
  if (name == "list") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    return Value::MakeList(std::move(items));
  }
  if (name == "first" || name == "last") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    if (items.empty()) return Value::Undefined(StrCat("No ", name, " item, sequence was empty."));
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    const Value* sep = Arg(args, 0, "d");
    const Value empty = Str("", true);
    if (sep && !sep->is_string()) return in.Error("join: separator must be a string");
    return Join(in, sep ? *sep : empty, items, Arg(args, 1, "attribute"));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::MakeList({});
    if (!v.is_dict()) return in.Error("items: expected a mapping");
    CallArgs none;
    return CallMethod(in, Value::MakeDict(v.entries()), "items", none);
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::vector<int32_t> cps = Decode(v.str());
      std::reverse(cps.begin(), cps.end());
      return Str(Encode(cps), v.text().trusted());
    }
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::MakeList(std::move(items));
  }
  if (name == "sort") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    RRT_ASSIGN_OR_RETURN(items, SortValues(in, std::move(items), ArgBool(args, 0, "reverse", false),
                                           ArgBool(args, 1, "case_sensitive", false), Arg(args, 2, "attribute")));
    return Value::MakeList(std::move(items));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) return in.Error("dictsort: expected a mapping");
    const Value* by = Arg(args, 1, "by");
    const bool by_value = by && by->is_string() && by->str() == "value";
    std::vector<Value> pairs;
    for (const auto& [k, item] : v.entries()) pairs.push_back(Value::MakeList({Str(k, false), item}, true));
    const Value index = Value::Int(by_value ? 1 : 0);
    RRT_ASSIGN_OR_RETURN(pairs, SortValues(in, std::move(pairs), ArgBool(args, 2, "reverse", false),
                                           ArgBool(args, 0, "case_sensitive", false), &index));
    return Value::MakeList(std::move(pairs));
  }
  if (name == "unique") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    const bool case_sensitive = ArgBool(args, 0, "case_sensitive", false);
    const Value* attribute = Arg(args, 1, "attribute");
    List out;
    std::vector<Value> seen;
    for (const Value& item : items) {
      RRT_ASSIGN_OR_RETURN(Value key, AttributeOf(in, item, attribute));
      if (!case_sensitive && key.is_string()) key = Str(Lower(key.str()), true);
      if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return Equal(s, key); })) {
        seen.push_back(key);
        out.push_back(item);
      }
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "min" || name == "max") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    if (items.empty()) return Value::Undefined(StrCat("No aggregated item, sequence was empty."));
    RRT_ASSIGN_OR_RETURN(items, SortValues(in, std::move(items), name == "max", ArgBool(args, 0, "case_sensitive", false),
                                           Arg(args, 1, "attribute")));
    return items.front();
  }
  if (name == "sum") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    const Value* attribute = Arg(args, 0, "attribute");
    const Value* start = Arg(args, 1, "start");
    Value total = start ? *start : Value::Int(0);
    for (const Value& item : items) {
      RRT_ASSIGN_OR_RETURN(Value x, AttributeOf(in, item, attribute));
      if (!x.is_number() || !total.is_number()) return in.Error("sum: items must be numbers");
      total = total.is_float() || x.is_float() ? Value::Float(total.number() + x.number())
                                               : Value::Int(total.int_value() + x.int_value());
    }
    return total;
  }
  if (name == "map") {
    RRT_ASSIGN_OR_RETURN(std::vector<Value> items, in.Iterate(v));
    List out;
    const Value* attribute = Arg(args, 99, "attribute");
    if (attribute) {
      const Value* dflt = Arg(args, 99, "default");
      for (const Value& item : items) {
        RRT_ASSIGN_OR_RETURN(Value x, AttributeOf(in, item, attribute));
        out.push_back(x.is_undefined() && dflt ? *dflt : x);
      }
      return Value::MakeList(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].is_string()) return in.Error("map: needs a filter name or attribute=");
    const std::string filter = args.positional[0].str();
    for (const Value& item : items) {
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      rest.keywords = args.keywords;
      RRT_ASSIGN_OR_RETURN(Value x, in.ApplyFilter(filter, item, rest));
      out.push_back(std::move(x));
    }
    return Value::MakeList(std::move(out));
  }
  if (name == "select") return SelectFilter(in, v, args, false, true);
  if (name == "reject") return SelectFilter(in, v, args, false, false);
  if (name == "selectattr") return SelectFilter(in, v, args, true, true);
  if (name == "rejectattr") return SelectFilter(in, v, args, true, false);
  if (name == "attr") {
    // Attributes only (methods, namespace members), never dict items, as jinja2's attr.
    RRT_ASSIGN_OR_RETURN(std::string attr, ArgString(in, args, 0, "name", "attr"));
    if (v.is_undefined()) return in.Error(v.undefined_name());
    if (HasMethod(v, attr) || v.is_namespace()) return in.GetAttr(v, attr);
    return Value::Undefined(StrCat("'", v.TypeName(), " object' has no attribute '", attr, "'"));
  }
  if (name == "int") {
    const Value* dflt = Arg(args, 0, "default");
    const Value fallback = dflt ? *dflt : Value::Int(0);
    if (v.is_int() || v.is_bool()) return Value::Int(v.int_value());
    if (v.is_float()) return std::isfinite(v.number()) ? Value::Int(static_cast<int64_t>(v.number())) : fallback;
    if (v.is_string()) {
      const std::string t = Strip(v.str(), nullptr, true, true);
      char* end = nullptr;
      errno = 0;
      const long long i = std::strtoll(t.c_str(), &end, 10);
      if (!t.empty() && *end == '\0' && errno == 0) return Value::Int(i);
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && *end == '\0' && std::isfinite(d)) return Value::Int(static_cast<int64_t>(d));
    }
    return fallback;
  }
  if (name == "float") {
    const Value* dflt = Arg(args, 0, "default");
    if (v.is_number()) return Value::Float(v.number());
    if (v.is_string()) {
      const std::string t = Strip(v.str(), nullptr, true, true);
      char* end = nullptr;
      const double d = std::strtod(t.c_str(), &end);
      if (!t.empty() && *end == '\0') return Value::Float(d);
    }
    return dflt ? *dflt : Value::Float(0.0);
  }
  if (name == "abs") {
    if (v.is_float()) return Value::Float(std::fabs(v.number()));
    if (v.is_int() || v.is_bool()) {
      if (v.int_value() == INT64_MIN) return in.Error("integer overflow");
      return Value::Int(std::abs(v.int_value()));
    }
    return in.Error(StrCat("bad operand type for abs(): '", v.TypeName(), "'"));
  }
  if (name == "round") {
    if (!v.is_number()) return in.Error("round: expected a number");
    const Value* p = Arg(args, 0, "precision");
    const int precision = p && p->is_int() ? static_cast<int>(std::clamp<int64_t>(p->int_value(), -20, 20)) : 0;
    const Value* m = Arg(args, 1, "method");
    const std::string method = m && m->is_string() ? m->str() : "common";
    const double scale = std::pow(10.0, precision);
    if (method == "ceil") return Value::Float(std::ceil(v.number() * scale) / scale);
    if (method == "floor") return Value::Float(std::floor(v.number() * scale) / scale);
    if (method != "common") return in.Error("round: method must be 'common', 'ceil' or 'floor'");
    if (!std::isfinite(v.number())) return Value::Float(v.number());
    // Python's round(): the exact binary value rounded to `precision` decimals, ties to
    // even, which is what printf does.
    if (precision >= 0) {
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", precision, v.number());
      return Value::Float(std::strtod(buf, nullptr));
    }
    return Value::Float(std::nearbyint(v.number() / std::pow(10.0, -precision)) * std::pow(10.0, -precision));
  }
  if (name == "replace") {
    const Value s = v.is_string() ? v : Value::String(ToText(v));
    return DoReplace(in, s, args, "replace filter");
  }
  // String filters: the value as str first, as jinja2's soft_str does.
  const Value s = v.is_string() ? v : Value::String(ToText(v));
  const bool trusted = s.text().trusted();
  if (name == "trim") {
    const Value* chars = Arg(args, 0, "chars");
    return Str(Strip(s.str(), chars, true, true), trusted && !(chars && AnyUntrusted(*chars)));
  }
  if (name == "upper") return Str(Upper(s.str()), trusted);
  if (name == "lower") return Str(Lower(s.str()), trusted);
  if (name == "capitalize") return Str(Capitalize(s.str()), trusted);
  if (name == "title") return Str(JinjaTitle(s.str()), trusted);
  if (name == "escape" || name == "e" || name == "forceescape") return in.MakeString([&] {
      Text t;
      t.Append(HtmlEscape(s.str()), trusted);
      return t;
    }());
  if (name == "indent") return Indent(in, s, args);
  if (name == "wordcount") {
    CallArgs none;
    RRT_ASSIGN_OR_RETURN(Value words, Split(in, s, none, false));
    return Value::Int(static_cast<int64_t>(words.list().size()));
  }
  if (name == "center") {
    const Value* w = Arg(args, 0, "width");
    const int64_t width = w && w->is_int() ? std::min<int64_t>(w->int_value(), in.limits().max_output_bytes) : 80;
    const int64_t len = CodePointCount(s.str());
    if (width <= len) return s;
    const int64_t pad = width - len, left = pad / 2 + (pad & width & 1);
    return Str(std::string(left, ' ') + s.str() + std::string(pad - left, ' '), trusted);
  }
  return in.Error(StrCat("unknown filter '", name, "'"));
}

// --- globals ---------------------------------------------------------------------------

Entries BuiltinGlobals() {
  Entries g;
  auto add = [&](std::string name, std::function<absl::StatusOr<Value>(Interpreter&, CallArgs&)> fn) {
    auto f = std::make_shared<Function>();
    f->name = name;
    f->call = std::move(fn);
    g.emplace_back(std::move(name), Value::MakeFunction(std::move(f)));
  };
  add("raise_exception", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    const std::string message = args.positional.empty() ? "" : ToText(args.positional[0]).bytes;
    return in.Error(StrCat("raise_exception: ", message));
  });
  add("strftime_now", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    if (args.positional.empty() || !args.positional[0].is_string()) return in.Error("strftime_now needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), args.positional[0].str().c_str(), &tm);
    return Str(std::string(buf, n), false);
  });
  add("namespace", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    Entries entries;
    for (const Value& p : args.positional) {
      if (!p.is_dict()) return in.Error("namespace() takes keyword arguments or a dict");
      for (const auto& e : p.entries()) entries.push_back(e);
    }
    for (const auto& keyword : args.keywords) {
      auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == keyword.first; });
      if (it != entries.end()) {
        it->second = keyword.second;
      } else {
        entries.push_back(keyword);
      }
    }
    return Value::MakeNamespace(std::move(entries));
  });
  add("dict", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    Entries entries;
    for (const Value& p : args.positional) {
      if (!p.is_dict()) return in.Error("dict() takes keyword arguments or a dict");
      for (const auto& e : p.entries()) entries.push_back(e);
    }
    for (auto& [k, v] : args.keywords) entries.emplace_back(k, v);
    return Value::MakeDict(std::move(entries));
  });
  add("range", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    int64_t start = 0, stop = 0, step = 1;
    for (const Value& a : args.positional) {
      if (!a.is_int() && !a.is_bool()) return in.Error("range() arguments must be integers");
    }
    const auto& p = args.positional;
    if (p.size() == 1) {
      stop = p[0].int_value();
    } else if (p.size() == 2 || p.size() == 3) {
      start = p[0].int_value();
      stop = p[1].int_value();
      if (p.size() == 3) step = p[2].int_value();
    } else {
      return in.Error("range() takes 1 to 3 arguments");
    }
    if (step == 0) return in.Error("range() step must not be zero");
    const double count = std::max(0.0, std::ceil((static_cast<double>(stop) - start) / step));
    if (count > static_cast<double>(in.limits().max_loop_iterations)) {
      return in.Exhausted(StrCat("range() of more than ", in.limits().max_loop_iterations, " items"));
    }
    List items;
    for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) items.push_back(Value::Int(start + i * step));
    return Value::MakeList(std::move(items));
  });
  add("joiner", [](Interpreter& in, CallArgs& args) -> absl::StatusOr<Value> {
    const Value sep = args.positional.empty() ? Str(", ", true) : args.positional[0];
    auto used = std::make_shared<bool>(false);
    auto f = std::make_shared<Function>();
    f->name = "joiner";
    f->call = [sep, used](Interpreter&, CallArgs&) -> absl::StatusOr<Value> {
      if (!*used) {
        *used = true;
        return Str("", true);
      }
      return sep;
    };
    return Value::MakeFunction(std::move(f));
  });
  return g;
}

}  // namespace reasonrt::chat
