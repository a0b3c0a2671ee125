#include "gateway-agent/background_io.h"

#include <algorithm>
#include <utility>

#include "shared/core/assert.h"

namespace mistore {

namespace {
// a * b as (high, low) 64-bit halves: portable (no __int128 on 32-bit ARM
// and MIPS, where the agent also runs).
std::pair<uint64_t, uint64_t> Mul128(uint64_t a, uint64_t b) {
  uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32, b_lo = b & 0xffffffffu, b_hi = b >> 32;
  uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  uint64_t lo = (mid << 32) | (ll & 0xffffffffu);
  uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
  return {hi, lo};
}
// a * b <= c * d, exactly.
bool ProductLe(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  return Mul128(a, b) <= Mul128(c, d);
}
}  // namespace

TokenBucket::TokenBucket(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ms)
    : rate_(rate_bytes_per_s),
      cap_mb_(int64_t(burst_bytes) * 1000),
      tokens_mb_(int64_t(burst_bytes) * 1000),
      last_ms_(now_ms) {
  MS_ASSERT(rate_bytes_per_s > 0 && rate_bytes_per_s < (uint64_t(1) << 40));
  MS_ASSERT(burst_bytes < (uint64_t(1) << 40));
}

int64_t TokenBucket::TokensAt(uint64_t now_ms) const {
  if (now_ms <= last_ms_) return tokens_mb_;
  // rate bytes/s == rate milli-bytes per ms; cap the elapsed time so the
  // product cannot overflow after a long pause.
  uint64_t elapsed = std::min<uint64_t>(now_ms - last_ms_, uint64_t(1) << 22);
  return std::min(cap_mb_, tokens_mb_ + int64_t(elapsed * rate_));
}

bool TokenBucket::TryTake(uint64_t now_ms, uint64_t bytes) {
  tokens_mb_ = TokensAt(now_ms);
  last_ms_ = std::max(last_ms_, now_ms);
  if (tokens_mb_ < 0) return false;
  tokens_mb_ -= int64_t(std::min<uint64_t>(bytes, uint64_t(1) << 40)) * 1000;
  taken_total_ += bytes;
  return true;
}

uint64_t TokenBucket::WaitMs(uint64_t now_ms) const {
  int64_t t = TokensAt(now_ms);
  if (t >= 0) return 0;
  return (uint64_t(-t) + rate_ - 1) / rate_;
}

bool ScrubPacer::MaybeStartPass(uint64_t now_ms, uint64_t total_bytes) {
  if (in_pass_) return true;
  if (!first_ && now_ms < start_ms_ + period_ms_) return false;
  first_ = false;
  start_ms_ = now_ms;
  in_pass_ = true;
  total_bytes_ = total_bytes;
  done_bytes_ = 0;
  return true;
}

bool ScrubPacer::ReadDue(uint64_t now_ms) const {
  if (!in_pass_) return false;
  uint64_t elapsed = now_ms - start_ms_;
  if (elapsed >= period_ms_ || total_bytes_ == 0) return true;
  // done <= total * elapsed / period, without overflow for large stores.
  return ProductLe(done_bytes_, period_ms_, total_bytes_, elapsed);
}

uint64_t ScrubPacer::NextDueMs(uint64_t now_ms) const {
  if (!in_pass_) return first_ ? now_ms : std::max(now_ms, start_ms_ + period_ms_);
  if (ReadDue(now_ms)) return now_ms;
  // Smallest elapsed with total * elapsed >= done * period: an estimate in
  // floating point, then made exact with the 128-bit comparison.
  double est = double(done_bytes_) * double(period_ms_) / double(total_bytes_);
  uint64_t elapsed = est >= double(period_ms_) ? period_ms_ : uint64_t(est);
  while (elapsed > 0 && ProductLe(done_bytes_, period_ms_, total_bytes_, elapsed - 1)) elapsed--;
  while (elapsed < period_ms_ && !ProductLe(done_bytes_, period_ms_, total_bytes_, elapsed))
    elapsed++;
  return std::max(now_ms, start_ms_ + elapsed);
}

bool ScrubPacer::EndPass(uint64_t now_ms) {
  MS_ASSERT(in_pass_);
  in_pass_ = false;
  passes_total_++;
  return now_ms - start_ms_ > period_ms_;
}

}  // namespace mistore
