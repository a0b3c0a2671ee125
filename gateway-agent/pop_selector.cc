// See pop_selector.h.
#include "gateway-agent/pop_selector.h"

#include <algorithm>

#include "shared/core/assert.h"

namespace mistore {

Result<std::vector<std::string>> ParsePopList(const std::string& list) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(at, comma - at);
    at = comma + 1;
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item.empty()) return InvalidArgument("empty item in the POP list '" + list + "'");
    size_t colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == item.size())
      return InvalidArgument("POP address '" + item + "' is not HOST:PORT");
    for (const auto& o : out)
      if (o == item) return InvalidArgument("POP '" + item + "' is listed twice");
    if (out.size() >= PopSelector::kPopsMax)
      return InvalidArgument("more than " + std::to_string(PopSelector::kPopsMax) +
                             " POPs in '" + list + "'");
    out.push_back(item);
  }
  return out;
}

PopSelector::PopSelector(PopSelectorParams params, uint64_t now_ms)
    : p_(std::move(params)),
      configured_(p_.addrs.size()),
      wait_until_ms_(now_ms),
      backoff_ms_(p_.retry_ms) {
  MS_ASSERT(!p_.addrs.empty() && p_.addrs.size() <= kPopsMax);
  MS_ASSERT(p_.retry_ms > 0 && p_.retry_max_ms >= p_.retry_ms && p_.failback_ms > 0);
}

void PopSelector::SetLearned(const std::vector<std::string>& addrs) {
  learned_ = addrs;
  learned_pending_ = true;
}

// Configured addresses first, then the learned ones; the address in use
// (being dialled, registered with, being left) is kept and index_ follows it.
void PopSelector::ApplyLearned() {
  learned_pending_ = false;
  const bool in_use = state_ != State::kWaiting;
  const std::string current = in_use ? p_.addrs[index_] : std::string();
  std::vector<std::string> next(p_.addrs.begin(), p_.addrs.begin() + configured_);
  auto add = [&next](const std::string& a) {
    if (next.size() >= kPopsMax || a.empty()) return;
    if (std::find(next.begin(), next.end(), a) == next.end()) next.push_back(a);
  };
  for (const auto& a : learned_) add(a);
  if (in_use && std::find(next.begin(), next.end(), current) == next.end()) {
    if (next.size() >= kPopsMax) next.pop_back();  // room for the one in use
    next.push_back(current);
  }
  p_.addrs = std::move(next);
  if (in_use)
    index_ = size_t(std::find(p_.addrs.begin(), p_.addrs.end(), current) - p_.addrs.begin());
  if (probe_index_ >= index_) probe_index_ = 0;
}

PopStep PopSelector::Poll(uint64_t now_ms) {
  if (learned_pending_ && !dial_in_flight_ && !probe_in_flight_ && state_ != State::kLeaving)
    ApplyLearned();
  switch (state_) {
    case State::kWaiting:
      if (now_ms < wait_until_ms_) return {};
      state_ = State::kDialing;
      index_ = 0;
      dial_in_flight_ = false;
      [[fallthrough]];
    case State::kDialing:
      if (dial_in_flight_) return {};
      dial_in_flight_ = true;
      return {PopStep::kDial, index_};
    case State::kRegistered:
      if (index_ == 0 || probe_in_flight_ || now_ms < probe_due_ms_) return {};
      probe_in_flight_ = true;
      return {PopStep::kProbe, probe_index_};
    case State::kLeaving:
      if (leave_told_) return {};
      leave_told_ = true;
      return {PopStep::kLeave, index_};
  }
  return {};
}

uint64_t PopSelector::next_wake_ms() const {
  switch (state_) {
    case State::kWaiting:
      return wait_until_ms_;
    case State::kRegistered:
      if (index_ > 0 && !probe_in_flight_) return probe_due_ms_;
      return UINT64_MAX;
    default:
      return UINT64_MAX;  // waiting for the outcome of a dial or a leave
  }
}

void PopSelector::OnDialFailed(uint64_t now_ms, size_t index) {
  if (state_ != State::kDialing || index != index_) return;  // stale
  dial_in_flight_ = false;
  if (index_ + 1 < p_.addrs.size()) {
    index_++;  // next POP, at once
    return;
  }
  // Every POP failed: wait, doubling up to the cap, then start over.
  failed_rounds_++;
  state_ = State::kWaiting;
  wait_until_ms_ = now_ms + backoff_ms_;
  backoff_ms_ = std::min(p_.retry_max_ms, backoff_ms_ * 2);
}

void PopSelector::OnRegistered(uint64_t now_ms, size_t index) {
  if (state_ != State::kDialing || index != index_) return;
  state_ = State::kRegistered;
  dial_in_flight_ = false;
  backoff_ms_ = p_.retry_ms;
  probe_index_ = 0;
  probe_in_flight_ = false;
  probe_due_ms_ = now_ms + p_.failback_ms;
}

void PopSelector::OnLost(uint64_t now_ms) {
  if (state_ == State::kLeaving) {
    // Left on purpose for a preferred POP: a round at once.
    state_ = State::kWaiting;
    wait_until_ms_ = now_ms;
    return;
  }
  if (state_ != State::kRegistered) return;
  state_ = State::kWaiting;
  wait_until_ms_ = now_ms + p_.retry_ms;
}

void PopSelector::OnProbeResult(uint64_t now_ms, size_t index, bool reachable) {
  if (state_ != State::kRegistered || !probe_in_flight_ || index != probe_index_) return;
  probe_in_flight_ = false;
  if (reachable) {
    state_ = State::kLeaving;
    leave_told_ = false;
    return;
  }
  if (++probe_index_ >= index_) {  // every preferred POP probed: later again
    probe_index_ = 0;
    probe_due_ms_ = now_ms + p_.failback_ms;
  }
}

}  // namespace mistore
