// Rule-based rewards: answer extraction and numeric comparison, format, language
// consistency, length-aware shaping, repetition.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <utility>

#include "lib/core/strings.h"
#include "lib/tokenizer/utf8.h"
#include "reasonrt/grpo.h"

namespace reasonrt::grpo {
namespace {

constexpr std::string_view kOpen = "<think>", kClose = "</think>";

size_t Count(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string_view::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The text after the last </think> (all of it without one).
std::string_view AnswerRegion(std::string_view completion) {
  const size_t close = completion.rfind(kClose);
  return close == std::string_view::npos ? completion : completion.substr(close + kClose.size());
}

// The thinking: before the first </think>, after a leading <think> (all of it if unclosed).
std::string_view Thinking(std::string_view completion) {
  std::string_view s = Trim(completion);
  if (s.substr(0, kOpen.size()) == kOpen) s.remove_prefix(kOpen.size());
  const size_t close = s.find(kClose);
  return close == std::string_view::npos ? s : s.substr(0, close);
}

// A recursive-descent evaluator of the numeric LaTeX people write in answers.
class NumberParser {
 public:
  explicit NumberParser(std::string text) : s_(std::move(text)) {}

  absl::StatusOr<double> Parse() {
    Skip();
    if (AtEnd()) return Bad("empty");
    auto v = Expr();
    if (!v.ok()) return v;
    Skip();
    if (!AtEnd()) return Bad(StrCat("unexpected '", s_.substr(i_, 10), "'"));
    if (!std::isfinite(*v)) return Bad("not finite");
    return v;
  }

 private:
  absl::Status Bad(std::string_view why) const {
    return absl::InvalidArgumentError(StrCat("not a number (", why, "): ", s_));
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  void Skip() {
    while (!AtEnd()) {
      const char c = s_[i_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i_;
      } else if (Eat("\\left") || Eat("\\right") || Eat("\\,") || Eat("\\!") || Eat("\\;") || Eat("\\ ")) {
      } else {
        break;
      }
    }
  }
  bool Eat(std::string_view w) {
    if (s_.compare(i_, w.size(), w) != 0) return false;
    // A command must not continue with letters (\pi vs \pix).
    if (w.size() > 1 && w[0] == '\\' && std::isalpha(static_cast<unsigned char>(w.back())) &&
        i_ + w.size() < s_.size() && std::isalpha(static_cast<unsigned char>(s_[i_ + w.size()]))) {
      return false;
    }
    i_ += w.size();
    return true;
  }
  bool Peek(char c) {
    Skip();
    return !AtEnd() && s_[i_] == c;
  }
  absl::StatusOr<double> Expr() {
    auto v = Term();
    if (!v.ok()) return v;
    double acc = *v;
    while (true) {
      Skip();
      if (Eat("+")) {
        auto r = Term();
        if (!r.ok()) return r;
        acc += *r;
      } else if (Eat("-")) {
        auto r = Term();
        if (!r.ok()) return r;
        acc -= *r;
      } else {
        return acc;
      }
    }
  }
  absl::StatusOr<double> Term() {
    auto v = Unary();
    if (!v.ok()) return v;
    double acc = *v;
    while (true) {
      Skip();
      if (Eat("*") || Eat("\\cdot") || Eat("\\times") || Eat("×")) {
        auto r = Unary();
        if (!r.ok()) return r;
        acc *= *r;
      } else if (Eat("/") || Eat("\\div") || Eat("÷")) {
        auto r = Unary();
        if (!r.ok()) return r;
        if (*r == 0.0) return Bad("division by zero");
        acc /= *r;
      } else {
        return acc;
      }
    }
  }
  absl::StatusOr<double> Unary() {
    Skip();
    if (Eat("-") || Eat("−")) {
      auto v = Unary();
      if (!v.ok()) return v;
      return -*v;
    }
    if (Eat("+")) return Unary();
    return Power();
  }
  absl::StatusOr<double> Power() {
    auto base = Atom();
    if (!base.ok()) return base;
    Skip();
    if (Eat("^")) {
      auto e = Unary();
      if (!e.ok()) return e;
      return std::pow(*base, *e);
    }
    // Juxtaposition with a constant or root: 2\pi, 3\sqrt{2}.
    Skip();
    if (!AtEnd() && (s_.compare(i_, 3, "\\pi") == 0 || s_.compare(i_, 5, "\\sqrt") == 0 || s_[i_] == '(')) {
      auto r = Power();
      if (!r.ok()) return r;
      return *base * *r;
    }
    return base;
  }
  absl::StatusOr<double> Group(char open, char close) {
    auto v = Expr();
    if (!v.ok()) return v;
    Skip();
    if (AtEnd() || s_[i_] != close) return Bad(StrCat("missing '", std::string(1, close), "'"));
    ++i_;
    (void)open;
    return v;
  }
  absl::StatusOr<double> Braced() {
    Skip();
    if (!Eat("{")) {  // \frac12: single-character arguments
      if (!AtEnd() && std::isdigit(static_cast<unsigned char>(s_[i_]))) return static_cast<double>(s_[i_++] - '0');
      return Bad("expected '{'");
    }
    return Group('{', '}');
  }
  absl::StatusOr<double> Atom() {
    Skip();
    if (AtEnd()) return Bad("unexpected end");
    if (Eat("(")) return Group('(', ')');
    if (Eat("{")) return Group('{', '}');
    if (Eat("[")) return Group('[', ']');
    if (Eat("\\frac") || Eat("\\dfrac") || Eat("\\tfrac")) {
      auto num = Braced();
      if (!num.ok()) return num;
      auto den = Braced();
      if (!den.ok()) return den;
      if (*den == 0.0) return Bad("division by zero");
      return *num / *den;
    }
    if (Eat("\\sqrt")) {
      double degree = 2.0;
      Skip();
      if (Eat("[")) {
        auto d = Group('[', ']');
        if (!d.ok()) return d;
        degree = *d;
      }
      auto v = Braced();
      if (!v.ok()) return v;
      if (*v < 0.0) return Bad("root of a negative number");
      return degree == 2.0 ? std::sqrt(*v) : std::pow(*v, 1.0 / degree);
    }
    if (Eat("\\pi") || Eat("π")) return M_PI;
    return Number();
  }
  // Digits with optional thousands separators ("1,234,567": groups of exactly three) and a
  // decimal part.
  absl::StatusOr<double> Number() {
    const size_t start = i_;
    std::string digits;
    while (!AtEnd() && std::isdigit(static_cast<unsigned char>(s_[i_]))) digits += s_[i_++];
    while (!digits.empty() && !AtEnd() && s_[i_] == ',' && i_ + 3 < s_.size() + 0 &&
           std::isdigit(static_cast<unsigned char>(s_[i_ + 1])) && std::isdigit(static_cast<unsigned char>(s_[i_ + 2])) &&
           std::isdigit(static_cast<unsigned char>(s_[i_ + 3])) &&
           (i_ + 4 >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_ + 4])))) {
      digits += s_.substr(i_ + 1, 3);
      i_ += 4;
    }
    if (!AtEnd() && s_[i_] == '.' && i_ + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_ + 1]))) {
      digits += s_[i_++];
      while (!AtEnd() && std::isdigit(static_cast<unsigned char>(s_[i_]))) digits += s_[i_++];
    }
    if (digits.empty()) {
      i_ = start;
      return Bad(AtEnd() ? "unexpected end" : StrCat("unexpected '", s_.substr(i_, 10), "'"));
    }
    return std::strtod(digits.c_str(), nullptr);
  }

  std::string s_;
  size_t i_ = 0;
};

// Drops what wraps a number in answers: $...$, \( \), \[ \], \boxed{} left inside, \text{...}
// and \mathrm{...} units, a trailing period, "%" and degree signs.
std::string Normalize(std::string_view text) {
  std::string s(Trim(text));
  for (size_t at = s.find("\\%"); at != std::string::npos; at = s.find("\\%")) s.erase(at, 2);
  auto strip_wrap = [&](std::string_view open, std::string_view close) {
    if (s.size() >= open.size() + close.size() && s.compare(0, open.size(), open) == 0 &&
        s.compare(s.size() - close.size(), close.size(), close) == 0) {
      s = std::string(Trim(std::string_view(s).substr(open.size(), s.size() - open.size() - close.size())));
      return true;
    }
    return false;
  };
  for (bool changed = true; changed;) {
    changed = false;
    while (!s.empty() && (s.back() == '.' || s.back() == '%')) {
      s.pop_back();
      changed = true;
    }
    changed = strip_wrap("$$", "$$") || strip_wrap("$", "$") || strip_wrap("\\(", "\\)") ||
              strip_wrap("\\[", "\\]") || changed;
    s = std::string(Trim(s));
  }
  // Units and words: \text{...}, \mathrm{...}, ^\circ, \% anywhere.
  for (std::string_view cmd : {"\\text{", "\\mathrm{", "\\mbox{"}) {
    for (size_t at = s.find(cmd); at != std::string::npos; at = s.find(cmd)) {
      size_t end = at + cmd.size();
      int depth = 1;
      while (end < s.size() && depth > 0) {
        if (s[end] == '{') ++depth;
        if (s[end] == '}') --depth;
        ++end;
      }
      s.erase(at, end - at);
    }
  }
  for (std::string_view junk : {"^\\circ", "^{\\circ}", "\\circ", "\\%", "°", "\\!"}) {
    for (size_t at = s.find(junk); at != std::string::npos; at = s.find(junk)) s.erase(at, junk.size());
  }
  return std::string(Trim(s));
}

bool Close(double a, double b, const AccuracyOptions& o) {
  return std::fabs(a - b) <= std::max(o.absolute_tolerance, o.relative_tolerance * std::max(std::fabs(a), std::fabs(b)));
}

// 1, 0 or NaN (gold not a number).
float Accuracy(const Sample& s, const AccuracyOptions& o) {
  const absl::StatusOr<double> gold = ParseNumber(s.gold);
  if (!gold.ok()) return NAN;
  const absl::StatusOr<double> got = ParseNumber(ExtractAnswer(s.completion));
  return got.ok() && Close(*got, *gold, o) ? 1.0f : 0.0f;
}

bool InScript(uint32_t c, Script s) {
  switch (s) {
    case Script::kLatin:
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) ||
             (c >= 0x1E00 && c <= 0x1EFF);
    case Script::kHan:
      return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
             (c >= 0xF900 && c <= 0xFAFF);
    case Script::kCyrillic: return c >= 0x400 && c <= 0x52F;
    case Script::kArabic: return (c >= 0x600 && c <= 0x6FF) || (c >= 0x750 && c <= 0x77F);
    case Script::kGreek: return c >= 0x370 && c <= 0x3FF;
    case Script::kHangul: return (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF);
    case Script::kKana: return c >= 0x3040 && c <= 0x30FF;
    case Script::kDevanagari: return c >= 0x900 && c <= 0x97F;
  }
  return false;
}

// Scripts whose characters are words by themselves.
bool CharIsWord(uint32_t c) {
  return InScript(c, Script::kHan) || InScript(c, Script::kKana) || InScript(c, Script::kHangul);
}

bool IsLetter(uint32_t c) {
  for (Script s : {Script::kLatin, Script::kHan, Script::kCyrillic, Script::kArabic, Script::kGreek,
                   Script::kHangul, Script::kKana, Script::kDevanagari}) {
    if (InScript(c, s)) return true;
  }
  return false;
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

}  // namespace

std::string ExtractAnswer(std::string_view completion) {
  const std::string_view region = AnswerRegion(completion);
  // The last \boxed{ (or \fbox{) with its braces balanced.
  size_t best = std::string_view::npos;
  for (std::string_view cmd : {"\\boxed{", "\\fbox{"}) {
    const size_t at = region.rfind(cmd);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) best = at;
  }
  if (best != std::string_view::npos) {
    const size_t open = region.find('{', best);
    int depth = 0;
    for (size_t i = open; i < region.size(); ++i) {
      if (region[i] == '{') ++depth;
      if (region[i] == '}' && --depth == 0) return std::string(Trim(region.substr(open + 1, i - open - 1)));
    }
    return "";  // unbalanced: no answer
  }
  return std::string(Trim(region));
}

absl::StatusOr<double> ParseNumber(std::string_view text) {
  std::string s = Normalize(text);
  // An answer written "x = 5" or "The answer is 5": the part after the last '='.
  const size_t eq = s.rfind('=');
  if (eq != std::string::npos) s = std::string(Trim(std::string_view(s).substr(eq + 1)));
  return NumberParser(s).Parse();
}

RewardFn AccuracyReward(const AccuracyOptions& options) {
  return [options](const Sample& s) { return Accuracy(s, options); };
}

RewardFn FormatReward() {
  return [](const Sample& s) -> float {
    std::string_view c = Trim(s.completion);
    const bool opens = c.substr(0, kOpen.size()) == kOpen;
    if (opens) c.remove_prefix(kOpen.size());
    if (opens == s.prompt_opens_thinking) return 0.0f;  // exactly one opening
    if (Count(c, kOpen) != 0 || Count(c, kClose) != 1) return 0.0f;
    const size_t close = c.find(kClose);
    if (Trim(c.substr(0, close)).empty()) return 0.0f;  // no thinking
    return Trim(c.substr(close + kClose.size())).empty() ? 0.0f : 1.0f;
  };
}

RewardFn TagCountReward() {
  return [](const Sample& s) -> float {
    const std::string_view c = s.completion;
    const size_t opens = Count(c, kOpen) + (s.prompt_opens_thinking ? 1 : 0), closes = Count(c, kClose);
    float r = 0.0f;
    if (opens == 1) r += 0.25f;
    if (closes == 1) r += 0.25f;
    const size_t close = c.find(kClose), open = c.find(kOpen);
    if (close != std::string_view::npos && (open == std::string_view::npos ? s.prompt_opens_thinking : open < close)) {
      r += 0.25f;
    }
    if (close != std::string_view::npos && !Trim(c.substr(close + kClose.size())).empty()) r += 0.25f;
    return r;
  };
}

RewardFn LanguageConsistencyReward(Script script) {
  return [script](const Sample& s) -> float {
    const std::string_view thinking = Thinking(s.completion);
    int64_t words = 0, in_target = 0;
    size_t i = 0;
    bool in_word = false, word_target = true;
    auto end_word = [&] {
      if (in_word) {
        ++words;
        if (word_target) ++in_target;
      }
      in_word = false;
      word_target = true;
    };
    while (i < thinking.size()) {
      if (utf8::ValidCharLength(thinking, i) == 0) {
        ++i;
        end_word();
        continue;
      }
      const uint32_t c = utf8::Next(thinking, i);
      if (!IsLetter(c)) {
        end_word();
      } else if (CharIsWord(c)) {
        end_word();
        ++words;
        if (InScript(c, script)) ++in_target;
      } else {
        in_word = true;
        word_target = word_target && InScript(c, script);
      }
    }
    end_word();
    return words == 0 ? NAN : static_cast<float>(static_cast<double>(in_target) / static_cast<double>(words));
  };
}

RewardFn SoftOverlongReward(int64_t max_tokens, int64_t cache) {
  return [max_tokens, cache](const Sample& s) -> float {
    const int64_t expected = max_tokens - cache;
    if (s.completion_tokens <= expected) return 0.0f;
    if (s.completion_tokens <= max_tokens && cache > 0) {
      return static_cast<float>(static_cast<double>(expected - s.completion_tokens) / static_cast<double>(cache));
    }
    return -1.0f;
  };
}

RewardFn CosineLengthReward(const CosineOptions& o) {
  return [o](const Sample& s) -> float {
    const float correct = Accuracy(s, o.accuracy);
    if (std::isnan(correct)) return NAN;
    const double progress = std::min(1.0, static_cast<double>(s.completion_tokens) / static_cast<double>(std::max<int64_t>(o.max_tokens, 1)));
    const double cosine = std::cos(progress * M_PI);
    // Correct: max_correct when short, min_correct at max length; wrong: min_wrong when
    // short, max_wrong at max length.
    const double lo = correct > 0 ? o.min_correct : o.max_wrong, hi = correct > 0 ? o.max_correct : o.min_wrong;
    return static_cast<float>(lo + 0.5 * (hi - lo) * (1.0 + cosine));
  };
}

RewardFn RepetitionPenaltyReward(int n, double max_penalty) {
  return [n, max_penalty](const Sample& s) -> float {
    const std::vector<std::string_view> words = Words(s.completion);
    if (n < 1 || static_cast<int64_t>(words.size()) < n) return 0.0f;
    std::set<std::vector<std::string_view>> distinct;
    const size_t total = words.size() - static_cast<size_t>(n) + 1;
    for (size_t i = 0; i < total; ++i) distinct.insert(std::vector<std::string_view>(words.begin() + i, words.begin() + i + n));
    return static_cast<float>(-max_penalty * (1.0 - static_cast<double>(distinct.size()) / static_cast<double>(total)));
  };
}

absl::StatusOr<RewardFn> BuiltinReward(std::string_view name) {
  if (name == "accuracy") return AccuracyReward();
  if (name == "format") return FormatReward();
  if (name == "tag_count") return TagCountReward();
  if (name == "repetition") return RepetitionPenaltyReward();
  if (name.substr(0, 9) == "language:") {
    static constexpr std::pair<std::string_view, Script> kScripts[] = {
        {"latin", Script::kLatin}, {"han", Script::kHan},     {"cyrillic", Script::kCyrillic},
        {"arabic", Script::kArabic}, {"greek", Script::kGreek}, {"hangul", Script::kHangul},
        {"kana", Script::kKana},   {"devanagari", Script::kDevanagari}};
    for (const auto& [script_name, script] : kScripts) {
      if (name.substr(9) == script_name) return LanguageConsistencyReward(script);
    }
  }
  return absl::InvalidArgumentError(StrCat("unknown reward '", name,
                                           "' (accuracy, format, tag_count, repetition, language:<script>)"));
}

absl::StatusOr<RewardSet> RewardSet::Parse(std::string_view spec) {
  RewardSet set;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = Trim(spec.substr(start, end - start));
    start = end + 1;
    if (item.empty()) continue;
    double weight = 1.0;
    const size_t colon = item.rfind(':');
    if (colon != std::string_view::npos) {
      const std::string number(item.substr(colon + 1));
      char* stop = nullptr;
      const double w = std::strtod(number.c_str(), &stop);
      if (!number.empty() && stop == number.c_str() + number.size()) {
        if (!std::isfinite(w)) return absl::InvalidArgumentError(StrCat("reward weight '", number, "' is not finite"));
        weight = w;
        item = item.substr(0, colon);
      }
    }
    absl::StatusOr<RewardFn> fn = BuiltinReward(item);
    if (!fn.ok()) return fn.status();
    set.Add(std::string(item), std::move(*fn), weight);
  }
  return set;
}

void RewardSet::Add(std::string name, RewardFn fn, double weight) {
  names_.push_back(std::move(name));
  fns_.push_back(std::move(fn));
  weights_.push_back(weight);
}

std::vector<float> RewardSet::Score(absl::Span<const Sample> samples) const {
  std::vector<float> out(fns_.size() * samples.size());
  for (size_t f = 0; f < fns_.size(); ++f) {
    for (size_t i = 0; i < samples.size(); ++i) out[f * samples.size() + i] = fns_[f](samples[i]);
  }
  return out;
}

}  // namespace reasonrt::grpo
