#include "shared/uvio/peer_pool.h"

namespace mistore {

Connection::Ptr PeerPool::Get(const std::string& addr) {
  auto it = peers_.find(addr);
  if (it == peers_.end() || !it->second.conn || it->second.conn->closed()) return nullptr;
  return it->second.conn;
}

void PeerPool::Call(const std::string& addr, pb::Envelope request, Connection::ReplyFn reply,
                    uint64_t timeout_ms) {
  Peer& p = peers_[addr];
  if (p.conn && !p.conn->closed()) {
    p.conn->Call(std::move(request), std::move(reply), timeout_ms);
    return;
  }
  if (p.queue.size() >= queued_calls_max_) {
    reply(ResourceExhausted("too many calls queued for " + addr));
    return;
  }
  p.queue.push_back(Queued{std::move(request), std::move(reply), timeout_ms});
  if (!p.dialling) StartDial(addr);
}

void PeerPool::StartDial(const std::string& addr) {
  peers_[addr].dialling = true;
  Dial(loop_, addr, limits_, [this, addr](Result<Connection::Ptr> r) {
    Peer& p = peers_[addr];
    p.dialling = false;
    std::deque<Queued> queue = std::move(p.queue);
    p.queue.clear();
    if (!r.ok()) {
      for (auto& q : queue) q.reply(r.status());
      return;
    }
    p.conn = r.value();
    if (on_request_) p.conn->set_on_request(on_request_);
    if (on_connect_) on_connect_(addr, p.conn);
    for (auto& q : queue) p.conn->Call(std::move(q.request), std::move(q.reply), q.timeout_ms);
  });
}

void PeerPool::CloseAll() {
  for (auto& [addr, p] : peers_)
    if (p.conn) p.conn->Close(Unavailable("shutting down"));
  peers_.clear();
}

}  // namespace mistore
