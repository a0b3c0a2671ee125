#include "pop-server/held_results.h"

#include "shared/core/assert.h"

namespace mistore {

void HeldResults::Put(uint64_t now_ms, uint32_t gateway_id, const std::string& subscriber,
                      const std::string& write_id, const pb::PutReply& reply, bool undelivered) {
  if (write_id.empty() || p_.per_gateway_max == 0 || p_.total_max == 0) return;
  Insert(Key{subscriber, write_id}, Entry{gateway_id, 0, now_ms, undelivered, reply});
}

void HeldResults::Insert(const Key& key, const Entry& entry) {
  Erase(key);
  uint64_t seq = ++seq_;
  Entry& e = entries_[key] = entry;
  e.seq = seq;
  order_[seq] = key;
  auto& mine = by_gateway_[e.gateway_id];
  mine[seq] = key;
  if (e.undelivered) undelivered_++;
  dirty_.insert(key);
  while (mine.size() > p_.per_gateway_max) {
    dropped_total_++;
    Erase(Key(mine.begin()->second));  // may erase `mine` itself only when empty
  }
  while (entries_.size() > p_.total_max) {
    dropped_total_++;
    Erase(Key(order_.begin()->second));
  }
}

void HeldResults::Load(uint64_t now_ms, const std::vector<HeldResultRecord>& records) {
  for (auto& r : records) {
    Key key{r.subscriber, r.write_id};
    if (r.write_id.empty() || now_ms >= r.at_ms + p_.keep_ms) {
      dirty_.insert(key);  // expired while the owner was down: removed from the store
      continue;
    }
    Insert(key, Entry{r.gateway_id, 0, r.at_ms, r.undelivered, r.reply});
  }
  // Loaded records are already stored as they are; only what the bounds
  // dropped (and the expired ones) needs writing.
  std::erase_if(dirty_, [this](const Key& k) { return entries_.count(k) > 0; });
}

HeldResultsChanges HeldResults::TakeChanges() {
  HeldResultsChanges c;
  for (const Key& key : dirty_) {
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      c.erase.push_back(key);
      continue;
    }
    const Entry& e = it->second;
    c.put.push_back(HeldResultRecord{key.first, key.second, e.gateway_id, e.at_ms, e.undelivered,
                                     e.reply});
  }
  dirty_.clear();
  return c;
}

const pb::PutReply* HeldResults::Find(uint64_t now_ms, const std::string& subscriber,
                                      const std::string& write_id) {
  auto it = entries_.find(Key{subscriber, write_id});
  if (it == entries_.end()) return nullptr;
  if (now_ms >= it->second.at_ms + p_.keep_ms) {
    Erase(it->first);
    return nullptr;
  }
  answered_total_++;
  return &it->second.reply;
}

pb::HeldResults HeldResults::Undelivered(uint64_t now_ms, uint32_t gateway_id) const {
  pb::HeldResults out;
  auto g = by_gateway_.find(gateway_id);
  if (g == by_gateway_.end()) return out;
  for (auto& [seq, key] : g->second) {
    if (size_t(out.results_size()) >= p_.push_max) break;
    const Entry& e = entries_.at(key);
    if (!e.undelivered || now_ms >= e.at_ms + p_.keep_ms) continue;
    auto* r = out.add_results();
    r->set_subscriber(key.first);
    r->set_write_id(key.second);
    *r->mutable_put_reply() = e.reply;
  }
  return out;
}

void HeldResults::MarkDelivered(uint32_t gateway_id, const pb::HeldResults& sent) {
  for (auto& r : sent.results()) {
    auto it = entries_.find(Key{r.subscriber(), r.write_id()});
    if (it == entries_.end() || it->second.gateway_id != gateway_id || !it->second.undelivered)
      continue;
    it->second.undelivered = false;
    dirty_.insert(it->first);
    undelivered_--;
    delivered_total_++;
  }
}

void HeldResults::Expire(uint64_t now_ms) {
  while (!order_.empty()) {
    const Entry& e = entries_.at(order_.begin()->second);
    if (now_ms < e.at_ms + p_.keep_ms) break;
    Erase(Key(order_.begin()->second));
  }
}

void HeldResults::Erase(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  const Entry& e = it->second;
  order_.erase(e.seq);
  auto g = by_gateway_.find(e.gateway_id);
  MS_ASSERT(g != by_gateway_.end());
  g->second.erase(e.seq);
  if (g->second.empty()) by_gateway_.erase(g);
  if (e.undelivered) undelivered_--;
  dirty_.insert(key);
  entries_.erase(it);
}

HeldResultsStats HeldResults::stats() const {
  return HeldResultsStats{entries_.size(), undelivered_, answered_total_, delivered_total_,
                          dropped_total_};
}

}  // namespace mistore
