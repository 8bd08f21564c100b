// lib/chat/ast.h: the parsed form of a Jinja template (the subset chat templates use).
#ifndef REASONRT_LIB_CHAT_AST_H_
#define REASONRT_LIB_CHAT_AST_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "lib/chat/value.h"

namespace reasonrt::chat {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kList,       // [items...]
    kTuple,      // (items...)
    kDict,       // {keys[i]: items[i]}
    kAttr,       // items[0].name
    kItem,       // items[0][items[1]]
    kSlice,      // items[0][items[1]:items[2]:items[3]] (null parts absent)
    kCall,       // items[0](items[1:], keywords)
    kFilter,     // items[0] | name(items[1:], keywords)
    kTest,       // items[0] is [not] name(items[1:]); negated
    kUnary,      // op items[0]: "-", "+", "not"
    kBinary,     // items[0] op items[1]: + - * / // % ** ~ and or in "not in"
    kCompare,    // items[0] ops[0] items[1] ops[1] items[2] ... (Python's chains)
    kCondition,  // items[1] if items[0] else items[2] (items[2] may be null)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;  // names, attributes, filters, tests, operators
  std::vector<std::string> ops;
  std::vector<ExprPtr> items;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  bool negated = false;
};

struct Node;
using Body = std::vector<std::unique_ptr<Node>>;

struct Node {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body)..., else_body
    kFor,       // for targets in expr [if filter] body [else else_body]
    kSet,       // set targets = expr, or set name.attribute = expr
    kSetBlock,  // set targets[0] %} body {% endset
    kMacro,     // macro name(params) body
    kBreak,
    kContinue,
    kScope,     // a body rendered as is ({% generation %} of transformers)
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attribute;  // set ns.attribute
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters and defaults
};

// Parses with jinja2's lexing rules for trim_blocks and lstrip_blocks, newlines normalised
// to \n and one trailing newline dropped. InvalidArgument naming the line and construct.
absl::StatusOr<Body> ParseTemplate(std::string_view source);

}  // namespace reasonrt::chat

#endif  // REASONRT_LIB_CHAT_AST_H_
