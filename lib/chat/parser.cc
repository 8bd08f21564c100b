// Lexer and parser for the Jinja subset of chat templates. The lexing rules follow
// jinja2's (documented behaviour of trim_blocks, lstrip_blocks, whitespace control and
// newline handling); the grammar and operator precedence follow jinja2's parser.
#include <cstring>
#include <string>
#include <vector>

#include "lib/chat/ast.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/tokenizer/utf8.h"

namespace reasonrt::chat {
namespace {

struct Token {
  enum class Type { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEnd };
  Type type;
  int line;
  std::string text;  // data, name, operator, decoded string
  int64_t int_value = 0;
  double float_value = 0;
};

absl::Status SyntaxError(int line, std::string_view message) {
  return absl::InvalidArgumentError(StrCat("chat template line ", line, ": ", message));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int CountLines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// Python's unicode-escape decoding of a string literal's body.
absl::StatusOr<std::string> DecodeEscapes(std::string_view s, int line) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    auto hex = [&](int digits) -> absl::StatusOr<uint32_t> {
      uint32_t v = 0;
      for (int d = 0; d < digits; ++d) {
        if (i + 1 >= s.size()) return SyntaxError(line, "truncated escape in string literal");
        const char h = s[++i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= h - '0';
        else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
        else return SyntaxError(line, "bad hex digit in string escape");
      }
      return v;
    };
    auto put = [&](uint32_t cp) -> absl::Status {
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return SyntaxError(line, "string escape is not a Unicode scalar value");
      }
      utf8::Append(cp, out);
      return absl::OkStatus();
    };
    switch (c) {
      case '\n': break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': {
        RRT_ASSIGN_OR_RETURN(uint32_t v, hex(2));
        RRT_RETURN_IF_ERROR(put(v));
        break;
      }
      case 'u': {
        RRT_ASSIGN_OR_RETURN(uint32_t v, hex(4));
        RRT_RETURN_IF_ERROR(put(v));
        break;
      }
      case 'U': {
        RRT_ASSIGN_OR_RETURN(uint32_t v, hex(8));
        RRT_RETURN_IF_ERROR(put(v));
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          uint32_t v = c - '0';
          for (int d = 0; d < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++d) {
            v = v * 8 + (s[++i] - '0');
          }
          RRT_RETURN_IF_ERROR(put(v));
        } else if (c == 'N') {
          return SyntaxError(line, "\\N{...} escapes are not supported");
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Newlines become \n and one trailing newline goes, as jinja2 does (keep_trailing_newline off).
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  absl::StatusOr<std::vector<Token>> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t p = pos_;
      char kind = 0;
      while ((p = src_.find('{', p)) != std::string::npos) {
        if (p + 1 < src_.size() && (src_[p + 1] == '{' || src_[p + 1] == '%' || src_[p + 1] == '#')) {
          kind = src_[p + 1];
          break;
        }
        ++p;
      }
      if (p == std::string::npos) {
        Emit(Token::Type::kData, src_.substr(pos_));
        break;
      }
      std::string data = src_.substr(pos_, p - pos_);
      const char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
      const int data_line = line_;
      line_ += CountLines(data);
      if (sign == '-') {
        while (!data.empty() && IsSpace(data.back())) data.pop_back();
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: whitespace between a line start and a block or comment tag goes.
        const size_t l_pos = data.rfind('\n') == std::string::npos ? 0 : data.rfind('\n') + 1;
        if (l_pos > 0 || line_starting) {
          if (data.find_first_not_of(" \t", l_pos) == std::string::npos) data.resize(l_pos);
        }
      }
      if (!data.empty()) tokens_.push_back({Token::Type::kData, data_line, std::move(data)});
      pos_ = p + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        RRT_RETURN_IF_ERROR(Comment());
      } else if (kind == '%' && IsRawTag()) {
        RRT_RETURN_IF_ERROR(Raw());
      } else {
        RRT_RETURN_IF_ERROR(Tag(kind == '{'));
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    tokens_.push_back({Token::Type::kEnd, line_, ""});
    return std::move(tokens_);
  }

 private:
  void Emit(Token::Type type, std::string text) {
    const int line = line_;
    line_ += CountLines(text);
    if (!text.empty() || type != Token::Type::kData) tokens_.push_back({type, line, std::move(text)});
  }

  // After a tag's end: "-" strips all whitespace that follows, otherwise trim_blocks takes
  // one newline after block tags and comments; "+" keeps it.
  void AfterTagEnd(char sign, bool trim) {
    if (sign == '-') {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
    } else if (sign != '+' && trim && pos_ < src_.size() && src_[pos_] == '\n') {
      ++line_;
      ++pos_;
    }
  }

  absl::Status Comment() {
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) return SyntaxError(line_, "comment is not closed with #}");
    const char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    line_ += CountLines(std::string_view(src_).substr(pos_, end - pos_));
    pos_ = end + 2;
    AfterTagEnd(sign, true);
    return absl::OkStatus();
  }

  // "{% raw %}" (with optional signs) at the current position.
  bool IsRawTag() const {
    size_t q = pos_;
    while (q < src_.size() && IsSpace(src_[q])) ++q;
    if (src_.compare(q, 3, "raw") != 0) return false;
    q += 3;
    while (q < src_.size() && IsSpace(src_[q])) ++q;
    if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
    return src_.compare(q, 2, "%}") == 0;
  }

  absl::Status Raw() {
    const int start_line = line_;
    size_t q = src_.find("%}", pos_);
    const char open_sign = src_[q - 1] == '-' || src_[q - 1] == '+' ? src_[q - 1] : 0;
    pos_ = q + 2;
    AfterTagEnd(open_sign, true);
    // Find "{%" [-+]? ws "endraw" ws [-+]? "%}".
    size_t search = pos_;
    while (true) {
      const size_t open = src_.find("{%", search);
      if (open == std::string::npos) return SyntaxError(start_line, "raw block is not closed with endraw");
      size_t r = open + 2;
      const char sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (sign) ++r;
      while (r < src_.size() && IsSpace(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) {
        search = open + 2;
        continue;
      }
      r += 6;
      while (r < src_.size() && IsSpace(src_[r])) ++r;
      const char end_sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (end_sign) ++r;
      if (src_.compare(r, 2, "%}") != 0) return SyntaxError(line_, "malformed endraw tag");
      std::string body = src_.substr(pos_, open - pos_);
      if (sign == '-') {
        while (!body.empty() && IsSpace(body.back())) body.pop_back();
      }
      Emit(Token::Type::kData, std::move(body));
      line_ += CountLines(std::string_view(src_).substr(open, r + 2 - open));
      pos_ = r + 2;
      AfterTagEnd(end_sign, true);
      return absl::OkStatus();
    }
  }

  absl::Status Tag(bool variable) {
    tokens_.push_back({variable ? Token::Type::kVarBegin : Token::Type::kBlockBegin, line_, ""});
    const int start_line = line_;
    int balance = 0;
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size()) {
        return SyntaxError(start_line, variable ? "'{{' is not closed with '}}'" : "'{%' is not closed with '%}'");
      }
      const std::string_view rest = std::string_view(src_).substr(pos_);
      if (balance == 0) {
        const std::string_view end = variable ? "}}" : "%}";
        char sign = 0;
        bool at_end = false;
        if (rest.substr(0, 2) == end) {
          at_end = true;
        } else if ((rest[0] == '-' || rest[0] == '+') && rest.substr(1, 2) == end) {
          sign = rest[0];
          at_end = true;
        }
        if (at_end) {
          pos_ += 2 + (sign ? 1 : 0);
          tokens_.push_back({variable ? Token::Type::kVarEnd : Token::Type::kBlockEnd, line_, ""});
          AfterTagEnd(sign, !variable);
          return absl::OkStatus();
        }
      }
      const char c = rest[0];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t n = 1;
        while (n < rest.size() && (std::isalnum(static_cast<unsigned char>(rest[n])) || rest[n] == '_')) ++n;
        tokens_.push_back({Token::Type::kName, line_, std::string(rest.substr(0, n))});
        pos_ += n;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        RRT_RETURN_IF_ERROR(Number(rest));
      } else if (c == '\'' || c == '"') {
        size_t n = 1;
        while (n < rest.size() && rest[n] != c) n += rest[n] == '\\' ? 2 : 1;
        if (n >= rest.size()) return SyntaxError(line_, "string literal is not closed");
        RRT_ASSIGN_OR_RETURN(std::string value, DecodeEscapes(rest.substr(1, n - 1), line_));
        tokens_.push_back({Token::Type::kString, line_, std::move(value)});
        line_ += CountLines(rest.substr(0, n));
        pos_ += n + 1;
      } else {
        static constexpr const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~",
                                               "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "<", ">"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (rest.substr(0, std::strlen(candidate)) == candidate) {
            op = candidate;
            break;
          }
        }
        if (op == nullptr) return SyntaxError(line_, StrCat("unexpected character '", std::string(1, c), "'"));
        if (*op == '(' || *op == '[' || *op == '{') ++balance;
        if ((*op == ')' || *op == ']' || *op == '}') && balance > 0) --balance;
        tokens_.push_back({Token::Type::kOp, line_, op});
        pos_ += std::strlen(op);
      }
    }
  }

  absl::Status Number(std::string_view rest) {
    auto digits = [&](size_t i) {  // (\d+_)*\d+ starting at i; returns the end or i
      size_t j = i;
      while (j < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[j])) ||
                                 (rest[j] == '_' && j > i && j + 1 < rest.size() &&
                                  std::isdigit(static_cast<unsigned char>(rest[j + 1]))))) {
        ++j;
      }
      return j;
    };
    size_t n = digits(0);
    bool is_float = false;
    if (n + 1 < rest.size() && rest[n] == '.' && std::isdigit(static_cast<unsigned char>(rest[n + 1]))) {
      n = digits(n + 1);
      is_float = true;
    }
    if (n < rest.size() && (rest[n] == 'e' || rest[n] == 'E')) {
      size_t m = n + 1;
      if (m < rest.size() && (rest[m] == '+' || rest[m] == '-')) ++m;
      if (m < rest.size() && std::isdigit(static_cast<unsigned char>(rest[m]))) {
        n = digits(m);
        is_float = true;
      }
    }
    std::string text;
    for (char c : rest.substr(0, n)) {
      if (c != '_') text += c;
    }
    Token t{is_float ? Token::Type::kFloat : Token::Type::kInt, line_, text};
    if (is_float) {
      t.float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      t.int_value = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == ERANGE) return SyntaxError(line_, "integer literal out of range");
    }
    tokens_.push_back(std::move(t));
    pos_ += n;
    return absl::OkStatus();
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

constexpr int kMaxNesting = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<Body> Template() {
    std::string end_tag;
    RRT_ASSIGN_OR_RETURN(Body body, ParseBody({}, &end_tag));
    return body;
  }

 private:
  const Token& Cur() const { return tokens_[i_]; }
  const Token& Peek(size_t k = 1) const { return tokens_[std::min(i_ + k, tokens_.size() - 1)]; }
  void Next() {
    if (i_ + 1 < tokens_.size()) ++i_;
  }
  bool IsOp(std::string_view op) const { return Cur().type == Token::Type::kOp && Cur().text == op; }
  bool IsName(std::string_view name) const { return Cur().type == Token::Type::kName && Cur().text == name; }
  bool SkipOp(std::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(std::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Token::Type::kVarEnd: return "'}}'";
      case Token::Type::kBlockEnd: return "'%}'";
      case Token::Type::kEnd: return "the end of the template";
      case Token::Type::kString: return "a string";
      case Token::Type::kInt:
      case Token::Type::kFloat: return "a number";
      default: return StrCat("'", t.text, "'");
    }
  }
  absl::Status Expected(std::string_view what) const {
    return SyntaxError(Cur().line, StrCat("expected ", what, ", found ", Describe(Cur())));
  }
  absl::Status ExpectOp(std::string_view op) {
    if (!SkipOp(op)) return Expected(StrCat("'", op, "'"));
    return absl::OkStatus();
  }
  absl::Status ExpectBlockEnd() {
    if (Cur().type != Token::Type::kBlockEnd) return Expected("'%}'");
    Next();
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ExpectName() {
    if (Cur().type != Token::Type::kName) return Expected("a name");
    std::string name = Cur().text;
    Next();
    return name;
  }
  absl::Status Enter() {
    if (++depth_ > kMaxNesting) return SyntaxError(Cur().line, "template nested too deeply");
    return absl::OkStatus();
  }

  static ExprPtr MakeExpr(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Parses nodes until a block tag named in `ends`; leaves that tag's name in *end_tag
  // and the position after the name.
  absl::StatusOr<Body> ParseBody(const std::vector<std::string_view>& ends, std::string* end_tag) {
    RRT_RETURN_IF_ERROR(Enter());
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == Token::Type::kEnd) {
        if (!ends.empty()) {
          std::string expected;
          for (std::string_view e : ends) expected += StrCat(expected.empty() ? "'" : " or '", e, "'");
          return SyntaxError(t.line, StrCat("unexpected end of template, expected ", expected));
        }
        break;
      }
      if (t.type == Token::Type::kData) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kText;
        node->line = t.line;
        node->text = t.text;
        body.push_back(std::move(node));
        Next();
        continue;
      }
      if (t.type == Token::Type::kVarBegin) {
        auto node = std::make_unique<Node>();
        node->kind = Node::Kind::kOutput;
        node->line = t.line;
        Next();
        RRT_ASSIGN_OR_RETURN(node->expr, ParseTuple(true, {}, false));
        if (Cur().type != Token::Type::kVarEnd) return Expected("'}}'");
        Next();
        body.push_back(std::move(node));
        continue;
      }
      if (t.type != Token::Type::kBlockBegin) return Expected("text or a tag");
      Next();
      if (Cur().type != Token::Type::kName) return Expected("a statement name");
      const std::string tag = Cur().text;
      for (std::string_view end : ends) {
        if (tag == end) {
          *end_tag = tag;
          Next();
          --depth_;
          return body;
        }
      }
      RRT_ASSIGN_OR_RETURN(std::unique_ptr<Node> node, ParseStatement());
      body.push_back(std::move(node));
    }
    --depth_;
    return body;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseStatement() {
    const int line = Cur().line;
    const std::string tag = Cur().text;
    Next();
    auto node = std::make_unique<Node>();
    node->line = line;
    std::string end_tag;
    if (tag == "if") {
      node->kind = Node::Kind::kIf;
      while (true) {
        RRT_ASSIGN_OR_RETURN(ExprPtr cond, ParseTuple(true, {}, false));
        RRT_RETURN_IF_ERROR(ExpectBlockEnd());
        RRT_ASSIGN_OR_RETURN(Body body, ParseBody({"elif", "else", "endif"}, &end_tag));
        node->branches.emplace_back(std::move(cond), std::move(body));
        if (end_tag == "elif") continue;
        if (end_tag == "else") {
          RRT_RETURN_IF_ERROR(ExpectBlockEnd());
          RRT_ASSIGN_OR_RETURN(node->else_body, ParseBody({"endif"}, &end_tag));
        }
        break;
      }
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "for") {
      node->kind = Node::Kind::kFor;
      RRT_ASSIGN_OR_RETURN(node->targets, ParseTargets());
      if (!SkipName("in")) return Expected("'in'");
      RRT_ASSIGN_OR_RETURN(node->expr, ParseTuple(false, {"recursive"}, false));
      if (SkipName("if")) {
        RRT_ASSIGN_OR_RETURN(node->filter, ParseExpression(true));
      }
      if (IsName("recursive")) return SyntaxError(line, "recursive for loops are not supported");
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      ++loop_depth_;
      RRT_ASSIGN_OR_RETURN(node->body, ParseBody({"else", "endfor"}, &end_tag));
      --loop_depth_;
      if (end_tag == "else") {
        RRT_RETURN_IF_ERROR(ExpectBlockEnd());
        RRT_ASSIGN_OR_RETURN(node->else_body, ParseBody({"endfor"}, &end_tag));
      }
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "set") {
      RRT_ASSIGN_OR_RETURN(node->targets, ParseTargets());
      if (node->targets.size() == 1 && SkipOp(".")) {
        RRT_ASSIGN_OR_RETURN(node->attribute, ExpectName());
      }
      if (SkipOp("=")) {
        node->kind = Node::Kind::kSet;
        RRT_ASSIGN_OR_RETURN(node->expr, ParseTuple(true, {}, false));
        RRT_RETURN_IF_ERROR(ExpectBlockEnd());
        return node;
      }
      if (node->targets.size() != 1 || !node->attribute.empty()) return Expected("'='");
      node->kind = Node::Kind::kSetBlock;
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      RRT_ASSIGN_OR_RETURN(node->body, ParseBody({"endset"}, &end_tag));
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "macro") {
      node->kind = Node::Kind::kMacro;
      RRT_ASSIGN_OR_RETURN(node->name, ExpectName());
      RRT_RETURN_IF_ERROR(ExpectOp("("));
      while (!SkipOp(")")) {
        if (!node->params.empty()) RRT_RETURN_IF_ERROR(ExpectOp(","));
        if (SkipOp(")")) break;
        RRT_ASSIGN_OR_RETURN(std::string param, ExpectName());
        ExprPtr def;
        if (SkipOp("=")) {
          RRT_ASSIGN_OR_RETURN(def, ParseExpression(true));
        }
        node->params.emplace_back(std::move(param), std::move(def));
      }
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      const int saved_loop_depth = loop_depth_;
      loop_depth_ = 0;
      RRT_ASSIGN_OR_RETURN(node->body, ParseBody({"endmacro"}, &end_tag));
      loop_depth_ = saved_loop_depth;
      if (Cur().type == Token::Type::kName && Cur().text == node->name) Next();
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) return SyntaxError(line, StrCat("'", tag, "' outside a for loop"));
      node->kind = tag == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    if (tag == "generation") {  // transformers' AssistantTracker: marks assistant text
      node->kind = Node::Kind::kScope;
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      RRT_ASSIGN_OR_RETURN(node->body, ParseBody({"endgeneration"}, &end_tag));
      RRT_RETURN_IF_ERROR(ExpectBlockEnd());
      return node;
    }
    static constexpr std::string_view kKnown[] = {"include", "import", "from", "extends", "block", "call",
                                                  "filter", "with", "do", "autoescape", "trans"};
    for (std::string_view known : kKnown) {
      if (tag == known) {
        return SyntaxError(line, StrCat("'{% ", tag, " %}' is not supported in chat templates"));
      }
    }
    return SyntaxError(line, StrCat("unknown statement '{% ", tag, " %}'"));
  }

  // name, or names separated by commas (optionally in parentheses).
  absl::StatusOr<std::vector<std::string>> ParseTargets() {
    std::vector<std::string> names;
    const bool paren = SkipOp("(");
    while (true) {
      RRT_ASSIGN_OR_RETURN(std::string name, ExpectName());
      names.push_back(std::move(name));
      if (!SkipOp(",")) break;
      if (Cur().type != Token::Type::kName || IsName("in")) break;
    }
    if (paren) RRT_RETURN_IF_ERROR(ExpectOp(")"));
    return names;
  }

  bool AtTupleEnd(const std::vector<std::string_view>& extra_end) const {
    const Token& t = Cur();
    if (t.type == Token::Type::kVarEnd || t.type == Token::Type::kBlockEnd || t.type == Token::Type::kEnd) return true;
    if (t.type == Token::Type::kOp && t.text == ")") return true;
    if (t.type == Token::Type::kName) {
      for (std::string_view e : extra_end) {
        if (t.text == e) return true;
      }
    }
    return false;
  }

  absl::StatusOr<ExprPtr> ParseTuple(bool with_condition, const std::vector<std::string_view>& extra_end,
                                     bool explicit_parentheses) {
    const int line = Cur().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) RRT_RETURN_IF_ERROR(ExpectOp(","));
      if (AtTupleEnd(extra_end)) break;
      if (!with_condition && IsName("if")) break;
      RRT_ASSIGN_OR_RETURN(ExprPtr e, ParseExpression(with_condition));
      items.push_back(std::move(e));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) return Expected("an expression");
    }
    ExprPtr t = MakeExpr(Expr::Kind::kTuple, line);
    t->items = std::move(items);
    return t;
  }

  absl::StatusOr<ExprPtr> ParseExpression(bool with_condition) {
    RRT_RETURN_IF_ERROR(Enter());
    absl::StatusOr<ExprPtr> e = with_condition ? ParseCondition() : ParseOr();
    --depth_;
    return e;
  }

  absl::StatusOr<ExprPtr> ParseCondition() {
    RRT_ASSIGN_OR_RETURN(ExprPtr value, ParseOr());
    while (IsName("if")) {
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr cond, ParseOr());
      ExprPtr otherwise;
      if (SkipName("else")) {
        RRT_ASSIGN_OR_RETURN(otherwise, ParseCondition());
      }
      ExprPtr c = MakeExpr(Expr::Kind::kCondition, line);
      c->items.push_back(std::move(cond));
      c->items.push_back(std::move(value));
      c->items.push_back(std::move(otherwise));
      value = std::move(c);
    }
    return value;
  }

  absl::StatusOr<ExprPtr> Binary(std::string op, ExprPtr left, ExprPtr right, int line) {
    ExprPtr b = MakeExpr(Expr::Kind::kBinary, line);
    b->name = std::move(op);
    b->items.push_back(std::move(left));
    b->items.push_back(std::move(right));
    return b;
  }

  absl::StatusOr<ExprPtr> ParseOr() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParseAnd());
    while (IsName("or")) {
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseAnd());
      RRT_ASSIGN_OR_RETURN(left, Binary("or", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseAnd() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParseNot());
    while (IsName("and")) {
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseNot());
      RRT_ASSIGN_OR_RETURN(left, Binary("and", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseNot() {
    if (IsName("not")) {
      const int line = Cur().line;
      Next();
      RRT_RETURN_IF_ERROR(Enter());
      RRT_ASSIGN_OR_RETURN(ExprPtr operand, ParseNot());
      --depth_;
      ExprPtr u = MakeExpr(Expr::Kind::kUnary, line);
      u->name = "not";
      u->items.push_back(std::move(operand));
      return u;
    }
    return ParseCompare();
  }

  absl::StatusOr<ExprPtr> ParseCompare() {
    const int line = Cur().line;
    RRT_ASSIGN_OR_RETURN(ExprPtr first, ParseMath1());
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (Cur().type == Token::Type::kOp &&
          (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" || Cur().text == ">" ||
           Cur().text == "<=" || Cur().text == ">=")) {
        op = Cur().text;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().type == Token::Type::kName && Peek().text == "in") {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = MakeExpr(Expr::Kind::kCompare, line);
        cmp->items.push_back(std::move(first));
      }
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseMath1());
      cmp->ops.push_back(std::move(op));
      cmp->items.push_back(std::move(right));
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  absl::StatusOr<ExprPtr> ParseMath1() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParseConcat());
    while (IsOp("+") || IsOp("-")) {
      const std::string op = Cur().text;
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseConcat());
      RRT_ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseConcat() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParseMath2());
    while (IsOp("~")) {
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseMath2());
      RRT_ASSIGN_OR_RETURN(left, Binary("~", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseMath2() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParsePow());
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = Cur().text;
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParsePow());
      RRT_ASSIGN_OR_RETURN(left, Binary(op, std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParsePow() {
    RRT_ASSIGN_OR_RETURN(ExprPtr left, ParseUnary(true));
    while (IsOp("**")) {
      const int line = Cur().line;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr right, ParseUnary(true));
      RRT_ASSIGN_OR_RETURN(left, Binary("**", std::move(left), std::move(right), line));
    }
    return left;
  }

  absl::StatusOr<ExprPtr> ParseUnary(bool with_filter) {
    RRT_RETURN_IF_ERROR(Enter());
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      const int line = Cur().line;
      const std::string op = Cur().text;
      Next();
      RRT_ASSIGN_OR_RETURN(ExprPtr operand, ParseUnary(false));
      node = MakeExpr(Expr::Kind::kUnary, line);
      node->name = op;
      node->items.push_back(std::move(operand));
    } else {
      RRT_ASSIGN_OR_RETURN(node, ParsePrimary());
    }
    RRT_ASSIGN_OR_RETURN(node, ParsePostfix(std::move(node)));
    if (with_filter) {
      RRT_ASSIGN_OR_RETURN(node, ParseFilterExpr(std::move(node)));
    }
    --depth_;
    return node;
  }

  absl::StatusOr<ExprPtr> ParsePrimary() {
    const Token& t = Cur();
    const int line = t.line;
    if (t.type == Token::Type::kName) {
      ExprPtr e = MakeExpr(Expr::Kind::kLiteral, line);
      if (t.text == "true" || t.text == "True") {
        e->literal = Value::Bool(true);
      } else if (t.text == "false" || t.text == "False") {
        e->literal = Value::Bool(false);
      } else if (t.text == "none" || t.text == "None") {
        e->literal = Value::None();
      } else {
        e->kind = Expr::Kind::kName;
        e->name = t.text;
      }
      Next();
      return e;
    }
    if (t.type == Token::Type::kString) {
      std::string s = t.text;
      Next();
      while (Cur().type == Token::Type::kString) {  // adjacent literals concatenate
        s += Cur().text;
        Next();
      }
      ExprPtr e = MakeExpr(Expr::Kind::kLiteral, line);
      e->literal = Value::String(std::move(s), /*trusted=*/true);
      return e;
    }
    if (t.type == Token::Type::kInt || t.type == Token::Type::kFloat) {
      ExprPtr e = MakeExpr(Expr::Kind::kLiteral, line);
      e->literal = t.type == Token::Type::kInt ? Value::Int(t.int_value) : Value::Float(t.float_value);
      Next();
      return e;
    }
    if (SkipOp("(")) {
      RRT_ASSIGN_OR_RETURN(ExprPtr e, ParseTuple(true, {}, true));
      RRT_RETURN_IF_ERROR(ExpectOp(")"));
      return e;
    }
    if (SkipOp("[")) {
      ExprPtr e = MakeExpr(Expr::Kind::kList, line);
      while (!SkipOp("]")) {
        if (!e->items.empty()) RRT_RETURN_IF_ERROR(ExpectOp(","));
        if (SkipOp("]")) break;
        RRT_ASSIGN_OR_RETURN(ExprPtr item, ParseExpression(true));
        e->items.push_back(std::move(item));
      }
      return e;
    }
    if (SkipOp("{")) {
      ExprPtr e = MakeExpr(Expr::Kind::kDict, line);
      size_t n = 0;
      while (!SkipOp("}")) {
        if (n) RRT_RETURN_IF_ERROR(ExpectOp(","));
        if (SkipOp("}")) break;
        RRT_ASSIGN_OR_RETURN(ExprPtr key, ParseExpression(true));
        RRT_RETURN_IF_ERROR(ExpectOp(":"));
        RRT_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->items.push_back(std::move(key));
        e->items.push_back(std::move(value));
        ++n;
      }
      return e;
    }
    return Expected("an expression");
  }

  absl::StatusOr<ExprPtr> ParsePostfix(ExprPtr node) {
    while (true) {
      const int line = Cur().line;
      if (SkipOp(".")) {
        if (Cur().type == Token::Type::kName) {
          ExprPtr a = MakeExpr(Expr::Kind::kAttr, line);
          a->name = Cur().text;
          a->items.push_back(std::move(node));
          Next();
          node = std::move(a);
        } else if (Cur().type == Token::Type::kInt) {
          ExprPtr a = MakeExpr(Expr::Kind::kItem, line);
          ExprPtr index = MakeExpr(Expr::Kind::kLiteral, line);
          index->literal = Value::Int(Cur().int_value);
          a->items.push_back(std::move(node));
          a->items.push_back(std::move(index));
          Next();
          node = std::move(a);
        } else {
          return Expected("an attribute name");
        }
      } else if (SkipOp("[")) {
        RRT_ASSIGN_OR_RETURN(node, ParseSubscript(std::move(node), line));
      } else if (IsOp("(")) {
        RRT_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  absl::StatusOr<ExprPtr> ParseSubscript(ExprPtr subject, int line) {
    ExprPtr parts[3];
    bool slice = false;
    if (!IsOp(":")) {
      RRT_ASSIGN_OR_RETURN(parts[0], ParseExpression(true));
    }
    if (SkipOp(":")) {
      slice = true;
      if (!IsOp("]") && !IsOp(":")) {
        RRT_ASSIGN_OR_RETURN(parts[1], ParseExpression(true));
      }
      if (SkipOp(":") && !IsOp("]")) {
        RRT_ASSIGN_OR_RETURN(parts[2], ParseExpression(true));
      }
    }
    RRT_RETURN_IF_ERROR(ExpectOp("]"));
    ExprPtr e = MakeExpr(slice ? Expr::Kind::kSlice : Expr::Kind::kItem, line);
    e->items.push_back(std::move(subject));
    if (slice) {
      for (auto& p : parts) e->items.push_back(std::move(p));
    } else {
      e->items.push_back(std::move(parts[0]));
    }
    return e;
  }

  // "(" args ")" into e->items[1:] and e->keywords.
  absl::Status ParseArgs(Expr* e) {
    RRT_RETURN_IF_ERROR(ExpectOp("("));
    bool first = true;
    while (!SkipOp(")")) {
      if (!first) RRT_RETURN_IF_ERROR(ExpectOp(","));
      first = false;
      if (SkipOp(")")) break;
      if (IsOp("*") || IsOp("**")) return SyntaxError(Cur().line, "*args and **kwargs in calls are not supported");
      if (Cur().type == Token::Type::kName && Peek().type == Token::Type::kOp && Peek().text == "=") {
        std::string key = Cur().text;
        Next();
        Next();
        RRT_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->keywords.emplace_back(std::move(key), std::move(value));
      } else {
        if (!e->keywords.empty()) return SyntaxError(Cur().line, "positional argument after a keyword argument");
        RRT_ASSIGN_OR_RETURN(ExprPtr value, ParseExpression(true));
        e->items.push_back(std::move(value));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ExprPtr> ParseCall(ExprPtr callee) {
    ExprPtr e = MakeExpr(Expr::Kind::kCall, Cur().line);
    e->items.push_back(std::move(callee));
    RRT_RETURN_IF_ERROR(ParseArgs(e.get()));
    return e;
  }

  absl::StatusOr<std::string> DottedName() {
    RRT_ASSIGN_OR_RETURN(std::string name, ExpectName());
    while (IsOp(".") && Peek().type == Token::Type::kName) {
      Next();
      name += "." + Cur().text;
      Next();
    }
    return name;
  }

  absl::StatusOr<ExprPtr> ParseFilterExpr(ExprPtr node) {
    while (true) {
      const int line = Cur().line;
      if (SkipOp("|")) {
        ExprPtr f = MakeExpr(Expr::Kind::kFilter, line);
        RRT_ASSIGN_OR_RETURN(f->name, DottedName());
        f->items.push_back(std::move(node));
        if (IsOp("(")) RRT_RETURN_IF_ERROR(ParseArgs(f.get()));
        node = std::move(f);
      } else if (SkipName("is")) {
        ExprPtr t = MakeExpr(Expr::Kind::kTest, line);
        t->negated = SkipName("not");
        RRT_ASSIGN_OR_RETURN(t->name, DottedName());
        t->items.push_back(std::move(node));
        const Token& c = Cur();
        if (IsOp("(")) {
          RRT_RETURN_IF_ERROR(ParseArgs(t.get()));
        } else if ((c.type == Token::Type::kName || c.type == Token::Type::kString || c.type == Token::Type::kInt ||
                    c.type == Token::Type::kFloat || IsOp("[") || IsOp("{")) &&
                   !IsName("else") && !IsName("or") && !IsName("and")) {
          if (IsName("is")) return SyntaxError(c.line, "tests cannot be chained with 'is'");
          RRT_ASSIGN_OR_RETURN(ExprPtr arg, ParsePrimary());
          RRT_ASSIGN_OR_RETURN(arg, ParsePostfix(std::move(arg)));
          t->items.push_back(std::move(arg));
        }
        node = std::move(t);
      } else if (IsOp("(")) {
        RRT_ASSIGN_OR_RETURN(node, ParseCall(std::move(node)));
      } else {
        return node;
      }
    }
  }

  std::vector<Token> tokens_;
  size_t i_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

absl::StatusOr<Body> ParseTemplate(std::string_view source) {
  Lexer lexer(source);
  RRT_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.Run());
  Parser parser(std::move(tokens));
  return parser.Template();
}

}  // namespace reasonrt::chat
