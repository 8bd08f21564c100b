#include "lib/models/rope.h"

#include <algorithm>
#include <cmath>

#include "lib/core/strings.h"

namespace reasonrt {
namespace {

// 1 / base^(2i / dim) in f32, as torch computes it from an integer arange.
std::vector<float> PlainInvFreq(double base, int64_t dim) {
  std::vector<float> out(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    out[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  return out;
}

void ApplyLlama3(const RopeScaling& s, std::vector<float>& inv_freq) {
  const float old_len = static_cast<float>(s.original_max_position_embeddings);
  const float low_wavelen = old_len / static_cast<float>(s.low_freq_factor);
  const float high_wavelen = old_len / static_cast<float>(s.high_freq_factor);
  const float factor = static_cast<float>(s.factor);
  const float pi = 3.141592653589793f;
  for (float& f : inv_freq) {
    const float wavelen = 2.0f * pi / f;
    if (wavelen > low_wavelen) {
      f = f / factor;
    } else if (wavelen >= high_wavelen) {
      const float smooth = (old_len / wavelen - static_cast<float>(s.low_freq_factor)) /
                           static_cast<float>(s.high_freq_factor - s.low_freq_factor);
      f = (1.0f - smooth) * f / factor + smooth * f;
    }
  }
}

double YarnMscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// DeepSeek's YaRN: dims below the beta_fast correction keep their frequency, dims above
// the beta_slow one are divided by the factor, a linear ramp in between.
void ApplyYarn(const RopeScaling& s, double base, int64_t dim, std::vector<float>& inv_freq) {
  const double two_pi = 2.0 * 3.141592653589793;
  auto correction_dim = [&](double rotations) {
    return dim * std::log(s.original_max_position_embeddings / (rotations * two_pi)) /
           (2.0 * std::log(base));
  };
  double low = std::floor(correction_dim(s.beta_fast));
  double high = std::ceil(correction_dim(s.beta_slow));
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  const float factor = static_cast<float>(s.factor);
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const float ramp = static_cast<float>(std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0));
    const float keep = 1.0f - ramp;
    inv_freq[i] = inv_freq[i] / factor * (1.0f - keep) + inv_freq[i] * keep;
  }
}

}  // namespace

absl::StatusOr<RopeParams> ComputeRope(const ModelConfig& c) {
  RopeParams p;
  const int64_t dim = c.is_deepseek() ? c.qk_rope_head_dim : c.head_dim;
  p.inv_freq = PlainInvFreq(c.rope_theta, dim);
  p.layout = c.is_deepseek() ? RopeLayout::kInterleaved : RopeLayout::kHalfSplit;
  p.softmax_scale = 1.0f / std::sqrt(static_cast<float>(c.qk_head_dim()));
  const RopeScaling& s = c.rope_scaling;
  switch (s.type) {
    case RopeScalingType::kNone:
      break;
    case RopeScalingType::kLinear:
      for (float& f : p.inv_freq) f /= static_cast<float>(s.factor);
      break;
    case RopeScalingType::kLlama3:
      ApplyLlama3(s, p.inv_freq);
      break;
    case RopeScalingType::kYarn: {
      if (!c.is_deepseek()) {
        return absl::UnimplementedError(StrCat("rope_scaling yarn is not supported for ",
                                               ArchitectureName(c.architecture)));
      }
      ApplyYarn(s, c.rope_theta, dim, p.inv_freq);
      p.cos_sin_scale = static_cast<float>(YarnMscale(s.factor, s.mscale) /
                                           YarnMscale(s.factor, s.mscale_all_dim));
      const double m = YarnMscale(s.factor, s.mscale_all_dim);
      p.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.qk_head_dim())) * m * m);
      break;
    }
  }
  return p;
}

}  // namespace reasonrt
