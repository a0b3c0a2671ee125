#include "dc-backend/standin.h"

#include <sodium.h>

#include "shared/core/log.h"
#include "shared/wire/envelope.h"

namespace mistore {

Result<std::unique_ptr<StandIn>> StandIn::Open(EventLoop* loop, const std::string& data_dir,
                                               const ConnectionLimits& limits, int k, int m) {
  MS_ASSIGN_OR_RETURN(auto store, SqlitePopStore::Open(data_dir + "/standin"));
  PopParams p;
  p.pop_id = kDcReplica;
  p.region = "dc";
  p.k = k;
  p.m = m;
  p.cache_bytes_max = UINT64_MAX;  // whole copies, never evicted
  p.place_fragments = false;
  return std::unique_ptr<StandIn>(new StandIn(loop, std::move(store), limits, p));
}

StandIn::StandIn(EventLoop* loop, std::unique_ptr<SqlitePopStore> store,
                 const ConnectionLimits& limits, PopParams params)
    : loop_(loop),
      store_(std::move(store)),
      core_(params, store_.get(), randombytes_random() | uint64_t(randombytes_random()) << 32),
      pops_(loop, limits) {
  pops_.set_on_connect([](const std::string&, const Connection::Ptr& c) {
    pb::Envelope hello;  // POPs accept requests only after a Hello
    hello.mutable_hello()->set_role(pb::ROLE_POP);
    hello.mutable_hello()->set_node_id(kDcReplica);
    c->Call(hello, [](Result<pb::Envelope>) {});
  });
}

void StandIn::OnRequest(const Connection::Ptr& c, uint32_t pop_id, const pb::Envelope& env) {
  auto [it, inserted] = conn_ids_.try_emplace(c.get(), next_conn_id_);
  if (inserted) conns_[next_conn_id_++] = c;
  core_.OnRequest(loop_->NowMs(), Peer{it->second, pb::ROLE_POP, pop_id, ""}, env);
  Flush();
}

void StandIn::LocalCall(pb::Envelope env, std::function<void(Result<pb::Envelope>)> done) {
  uint64_t id = next_conn_id_++;
  local_calls_[id] = std::move(done);
  env.set_request_id(1);
  env.set_map_epoch(core_.cluster_map().epoch());  // the DC's own map
  core_.OnRequest(loop_->NowMs(), Peer{id, pb::ROLE_POP, kDcReplica, ""}, env);
  Flush();
}

void StandIn::ForgetConnection(const Connection::Ptr& c) {
  auto it = conn_ids_.find(c.get());
  if (it == conn_ids_.end()) return;
  conns_.erase(it->second);
  conn_ids_.erase(it);
}

void StandIn::OnClusterMap(const pb::ClusterMap& map) {
  core_.OnClusterMap(loop_->NowMs(), map);
  Flush();
}

void StandIn::RunGcTask(const pb::GcTask& t,
                        std::function<void(bool done, pb::GcResult)> done) {
  core_.OnGcTask(loop_->NowMs(), t, std::move(done));
  Flush();
}

void StandIn::Tick() {
  core_.OnTick(loop_->NowMs());
  Flush();
}

void StandIn::Flush() {
  for (;;) {
    Outbox out = core_.TakeOutbox();
    if (out.empty()) return;
    for (auto& r : out.replies) {
      if (auto local = local_calls_.find(r.conn_id); local != local_calls_.end()) {
        auto done = std::move(local->second);
        local_calls_.erase(local);
        if (Status st = ResponseStatus(r.msg); !st.ok())
          done(st);
        else
          done(std::move(r.msg));
        continue;
      }
      auto it = conns_.find(r.conn_id);
      if (it == conns_.end()) continue;
      if (auto c = it->second.lock()) c->Reply(r.request_id, std::move(r.msg));
    }
    for (auto& call : out.calls) {
      Token t = call.token;
      auto done = [this, t](Result<pb::Envelope> r) {
        core_.OnCallDone(loop_->NowMs(), t, std::move(r));
        Flush();
      };
      if (call.to.kind == Dest::kDc && call_dc_) {
        call_dc_(std::move(call.msg), done);
        continue;
      }
      std::string addr;
      if (call.to.kind == Dest::kPop)
        for (auto& p : core_.cluster_map().pops())
          if (p.pop_id() == call.to.id) addr = p.addr();
      if (addr.empty()) {
        loop_->After(
            0, [done] { done(Unavailable("the stand-in replica reaches only POPs and the DC")); });
        continue;
      }
      pops_.Call(addr, std::move(call.msg), done, call.timeout_ms);
    }
    // No gateways, so no erasure jobs; run any inline (rare and small).
    for (auto& j : out.jobs) {
      j.run();
      core_.OnJobDone(loop_->NowMs(), j.token);
    }
  }
}

}  // namespace mistore
