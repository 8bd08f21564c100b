#include <algorithm>

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/generate/run.h"
#include "reasonrt/generate.h"

namespace reasonrt {

GenerationRun::~GenerationRun() = default;

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopString: return "stop";
    case FinishReason::kMaxTokens: return "max_tokens";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kContextFull: return "context_full";
  }
  return "unknown";
}

struct Generator::Impl {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const ChatTemplate> chat;
  gen::ModelInfo info;

  absl::StatusOr<std::unique_ptr<GenerationRun>> Start(std::vector<int32_t> prompt, std::string prompt_text,
                                                       const GenerateOptions& options) const {
    SessionOptions session_options;
    session_options.kv_dtype = options.kv_dtype;
    session_options.max_tokens = options.cache_tokens > 0
                                     ? options.cache_tokens
                                     : gen::CacheTokensFor(static_cast<int64_t>(prompt.size()), options);
    RRT_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, model->NewSession(session_options));
    return gen::StartRun(std::move(session), tokenizer, info, std::move(prompt), std::move(prompt_text), options);
  }

  absl::StatusOr<std::pair<std::vector<int32_t>, std::string>> RenderPrompt(absl::Span<const ChatMessage> messages,
                                                                            const GenerateOptions& options) const {
    RRT_ASSIGN_OR_RETURN(ChatPrompt prompt, chat->Render(messages, options.chat));
    RRT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, EncodeChatPrompt(*tokenizer, prompt));
    return std::make_pair(std::move(ids), std::move(prompt.text));
  }
};

Generator::Generator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Generator::~Generator() = default;

absl::StatusOr<std::unique_ptr<Generator>> Generator::Create(std::shared_ptr<const Model> model,
                                                             std::shared_ptr<const Tokenizer> tokenizer,
                                                             std::shared_ptr<const ChatTemplate> chat_template) {
  if (!model || !tokenizer || !chat_template) {
    return absl::InvalidArgumentError("Generator::Create needs a model, a tokenizer and a chat template");
  }
  if (tokenizer->vocab_size() > model->config().vocab_size) {
    return absl::InvalidArgumentError(StrCat("the tokenizer has ", tokenizer->vocab_size(),
                                             " tokens but the model's vocabulary only ", model->config().vocab_size));
  }
  auto impl = std::make_unique<Impl>();
  impl->info.vocab_size = model->config().vocab_size;
  impl->info.max_positions = model->config().max_position_embeddings;
  for (int64_t id : model->config().eos_token_ids) impl->info.eos_ids.push_back(static_cast<int32_t>(id));
  if (auto eos = tokenizer->eos_id()) impl->info.eos_ids.push_back(*eos);
  std::sort(impl->info.eos_ids.begin(), impl->info.eos_ids.end());
  impl->info.eos_ids.erase(std::unique(impl->info.eos_ids.begin(), impl->info.eos_ids.end()), impl->info.eos_ids.end());
  impl->model = std::move(model);
  impl->tokenizer = std::move(tokenizer);
  impl->chat = std::move(chat_template);
  return std::unique_ptr<Generator>(new Generator(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Generator>> Generator::Load(const std::string& path, const LoadOptions& options) {
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(path, options));
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::Load(path));
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<ChatTemplate> chat, ChatTemplate::Load(path));
  return Create(std::move(model), std::move(tokenizer), std::move(chat));
}

const Model& Generator::model() const { return *impl_->model; }
const Tokenizer& Generator::tokenizer() const { return *impl_->tokenizer; }
const ChatTemplate& Generator::chat_template() const { return *impl_->chat; }

absl::StatusOr<std::unique_ptr<GenerationRun>> Generator::Start(absl::Span<const ChatMessage> messages,
                                                                const GenerateOptions& options) const {
  RRT_ASSIGN_OR_RETURN(auto prompt, impl_->RenderPrompt(messages, options));
  return impl_->Start(std::move(prompt.first), std::move(prompt.second), options);
}

absl::StatusOr<std::unique_ptr<GenerationRun>> Generator::StartFromTokens(absl::Span<const int32_t> prompt,
                                                                          const GenerateOptions& options) const {
  // The prompt's text decides whether the output starts in thinking.
  for (int32_t t : prompt) {
    if (t < 0 || t >= impl_->info.vocab_size) {
      return absl::InvalidArgumentError(StrCat("prompt token ", t, " is outside the vocabulary (", impl_->info.vocab_size, ")"));
    }
  }
  std::string text;  // of the last tokens the tokenizer knows (a model may have spare ids)
  for (size_t i = prompt.size() - std::min<size_t>(prompt.size(), 16); i < prompt.size(); ++i) {
    if (auto bytes = impl_->tokenizer->TokenBytes(prompt[i]); bytes.ok()) text += *bytes;
  }
  return impl_->Start(std::vector<int32_t>(prompt.begin(), prompt.end()), std::move(text), options);
}

absl::StatusOr<GenerationResult> Generator::Generate(absl::Span<const ChatMessage> messages,
                                                     const GenerateOptions& options,
                                                     const StreamCallbacks& stream) const {
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<GenerationRun> run, Start(messages, options));
  return gen::Drive(*run, stream);
}

absl::StatusOr<GenerationResult> Generator::GenerateFromText(std::string_view prompt, const GenerateOptions& options,
                                                             const StreamCallbacks& stream) const {
  EncodeOptions encode;
  encode.parse_special = true;
  // BOS as the tokenizer's config asks, unless the text already begins with it.
  encode.add_special_tokens = true;
  if (auto bos = impl_->tokenizer->bos_id()) {
    auto bos_text = impl_->tokenizer->TokenBytes(*bos);
    if (bos_text.ok() && prompt.substr(0, bos_text->size()) == *bos_text) encode.add_special_tokens = false;
  }
  RRT_ASSIGN_OR_RETURN(std::vector<int32_t> ids, impl_->tokenizer->Encode(prompt, encode));
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<GenerationRun> run, impl_->Start(std::move(ids), std::string(prompt), options));
  GenerationResult result;
  RRT_ASSIGN_OR_RETURN(result, gen::Drive(*run, stream));
  return result;
}

absl::StatusOr<GenerationResult> Generator::GenerateFromTokens(absl::Span<const int32_t> prompt,
                                                               const GenerateOptions& options,
                                                               const StreamCallbacks& stream) const {
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<GenerationRun> run, StartFromTokens(prompt, options));
  return gen::Drive(*run, stream);
}

absl::StatusOr<ScoreResult> Generator::Score(absl::Span<const int32_t> prompt,
                                             absl::Span<const std::vector<int32_t>> completions,
                                             float temperature) const {
  int64_t tokens = static_cast<int64_t>(prompt.size()) + 16 * static_cast<int64_t>(completions.size() + 2);
  for (const auto& c : completions) {
    tokens += static_cast<int64_t>(c.size());
    if (static_cast<int64_t>(prompt.size() + c.size()) > impl_->info.max_positions) {
      return absl::ResourceExhaustedError(StrCat("Score: prompt and completion (", prompt.size() + c.size(),
                                                 " tokens) exceed the model's context of ", impl_->info.max_positions));
    }
  }
  SessionOptions session_options;
  session_options.max_tokens = tokens;
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, impl_->model->NewSession(session_options));
  return gen::ScoreOn(*session, impl_->info.vocab_size, prompt, completions, temperature);
}

}  // namespace reasonrt
