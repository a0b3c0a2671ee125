// PeerPool: one outgoing connection per remote address, dialled on first
// use and re-dialled after it drops. Calls made while dialling wait in a
// bounded queue. Loop thread only.
#pragma once

#include <deque>
#include <map>
#include <string>

#include "shared/uvio/connection.h"

namespace mistore {

class PeerPool {
 public:
  PeerPool(EventLoop* loop, ConnectionLimits limits, size_t queued_calls_max = 1024)
      : loop_(loop), limits_(limits), queued_calls_max_(queued_calls_max) {}

  // Called for each new connection (e.g. to send a Hello first, or to
  // install a request handler for calls coming the other way).
  void set_on_connect(std::function<void(const std::string& addr, const Connection::Ptr&)> fn) {
    on_connect_ = std::move(fn);
  }
  void set_on_request(Connection::RequestFn fn) { on_request_ = std::move(fn); }

  void Call(const std::string& addr, pb::Envelope request, Connection::ReplyFn reply,
            uint64_t timeout_ms = 0);
  // Existing live connection to addr, or nullptr.
  Connection::Ptr Get(const std::string& addr);
  void CloseAll();

 private:
  struct Queued {
    pb::Envelope request;
    Connection::ReplyFn reply;
    uint64_t timeout_ms;
  };
  struct Peer {
    Connection::Ptr conn;
    bool dialling = false;
    std::deque<Queued> queue;
  };
  void StartDial(const std::string& addr);

  EventLoop* loop_;
  ConnectionLimits limits_;
  size_t queued_calls_max_;
  std::map<std::string, Peer> peers_;
  std::function<void(const std::string&, const Connection::Ptr&)> on_connect_;
  Connection::RequestFn on_request_;
};

}  // namespace mistore
