// Background I/O pacing for the gateway agent (issue 6): a token bucket that
// caps disk reads done for background work (scrub, repair reads) at
// background_io_bytes_per_s, and the scrub pacer that spreads one pass over
// all fragments across scrub_period. Pure classes: time comes in as now_ms
// (monotonic milliseconds), nothing here reads a clock or touches the disk.
// Owned by AgentCore; loop thread.
#pragma once

#include <cstdint>

namespace mistore {

// Long-run rate `rate_bytes_per_s`, bursts up to `burst_bytes`. A take may
// overdraw the bucket (one fragment can be larger than the burst); further
// takes then wait until the debt is repaid, so the average holds.
class TokenBucket {
 public:
  TokenBucket(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ms);

  // Spends `bytes` and returns true when the bucket is not in debt at now_ms;
  // otherwise spends nothing and returns false.
  bool TryTake(uint64_t now_ms, uint64_t bytes);
  // Milliseconds from now_ms until TryTake can succeed (0: now).
  uint64_t WaitMs(uint64_t now_ms) const;
  // Bytes taken since construction.
  uint64_t taken_total() const { return taken_total_; }
  uint64_t rate_bytes_per_s() const { return rate_; }

 private:
  int64_t TokensAt(uint64_t now_ms) const;  // in milli-bytes
  uint64_t rate_;
  int64_t cap_mb_;     // burst, milli-bytes
  int64_t tokens_mb_;  // milli-bytes; negative = debt
  uint64_t last_ms_;
  uint64_t taken_total_ = 0;
};

// One scrub pass reads every fragment once, in name order, spread evenly
// over period_ms: a read is due while the bytes done so far are no more than
// the pass's share of elapsed time (bytes at pass start x elapsed/period);
// once the period has elapsed it goes as fast as the token bucket allows.
// The next pass starts period_ms after the previous one started (or at once
// if that is already past).
class ScrubPacer {
 public:
  ScrubPacer(uint64_t period_ms, uint64_t now_ms) : period_ms_(period_ms), start_ms_(now_ms) {}

  // Starts a pass if one is due; total_bytes is the store's size now.
  // Returns true while a pass is running.
  bool MaybeStartPass(uint64_t now_ms, uint64_t total_bytes);
  // True when the running pass may read its next fragment at now_ms.
  bool ReadDue(uint64_t now_ms) const;
  // When the next read (or the next pass) is due, >= now_ms.
  uint64_t NextDueMs(uint64_t now_ms) const;
  void Done(uint64_t bytes) { done_bytes_ += bytes; }
  // The pass walked past the last fragment. Returns true if it finished
  // later than its period (the rate limit is too low for the store).
  bool EndPass(uint64_t now_ms);

  bool in_pass() const { return in_pass_; }
  uint64_t passes_total() const { return passes_total_; }
  uint64_t pass_start_ms() const { return start_ms_; }
  uint64_t done_bytes() const { return done_bytes_; }

 private:
  uint64_t period_ms_;
  uint64_t start_ms_;
  bool in_pass_ = false;
  bool first_ = true;
  uint64_t total_bytes_ = 0;
  uint64_t done_bytes_ = 0;
  uint64_t passes_total_ = 0;
};

}  // namespace mistore
