// AgentCore driven with a fake clock over a real FragmentStore in a temp dir:
// registration inventory, heartbeats, bad-fragment reports, the scrubber's
// period and rate, deletes, background reads, tolerance of a POP that does
// not handle the issue-6 messages yet.
#include "gateway-agent/agent_core.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "shared/erasure/chunk_codec.h"
#include "shared/store/file_util.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using store_test::RandomBytes;
using store_test::SeedTrace;
using store_test::TempDir;
using store_test::TestSeed;

std::string S(const Bytes& b) { return std::string(b.begin(), b.end()); }

pb::Envelope Ok() {
  pb::Envelope e;
  e.set_is_response(true);
  e.mutable_empty();
  return e;
}

pb::Envelope Refused() {
  pb::Envelope e;
  e.set_is_response(true);
  e.mutable_error()->set_code(uint32_t(Code::kProtocol));
  e.mutable_error()->set_message("POP does not serve message type 140");
  return e;
}

std::set<std::string> Names(const google::protobuf::RepeatedPtrField<pb::FragmentRef>& refs) {
  std::set<std::string> out;
  for (auto& r : refs)
    out.insert(FragmentName(Bytes(r.chunk_id().begin(), r.chunk_id().end()), r.index()));
  return out;
}

class AgentCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = TestSeed();
    rng_.seed(seed_);
  }
  std::string Dir() const { return tmp_.path() + "/frags"; }

  void OpenStore(uint64_t bytes_max = uint64_t(1) << 40, bool verify = true) {
    FragmentStoreOptions o;
    o.store_bytes_max = bytes_max;
    o.verify_payloads_at_open = verify;
    auto s = FragmentStore::Open(Dir(), o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_.emplace(std::move(s).value());
  }
  // k+m fragments of a random chunk of `len` bytes.
  std::vector<Bytes> Fragments(size_t len, int k = 2, int m = 1) {
    auto r =
        EncodeChunkToFragments(RandomBytes(rng_, 32), RandomBytes(rng_, len).data(), len, k, m);
    EXPECT_TRUE(r.ok());
    return std::move(r).value();
  }
  void Fill(int chunks, size_t len) {
    for (int i = 0; i < chunks; i++)
      for (auto& b : Fragments(len)) ASSERT_TRUE(store_->Put(b).ok());
  }
  void MakeCore(AgentParams p) { core_.emplace(std::move(p), &*store_, now_); }
  static AgentParams Params() {
    AgentParams p;
    p.heartbeat_ms = 3000;
    p.scrub_period_ms = 3600'000;
    p.background_io_bytes_per_s = 1 << 20;
    p.background_io_burst_bytes = 1 << 18;
    p.failure_domains = {"cabinet=c12", "power=p3"};
    return p;
  }
  // Answers every call in the outbox with `reply` and returns the calls.
  std::vector<AgentOutbox::Call> AnswerAll(AgentOutbox& o, const Result<pb::Envelope>& reply) {
    for (auto& c : o.calls) core_->OnCallDone(now_, c.token, reply);
    return std::move(o.calls);
  }
  AgentOutbox::Reply Request(pb::Envelope req, uint64_t id = 77) {
    req.set_request_id(id);
    core_->OnPopRequest(now_, kConn, req);
    out_ = core_->TakeOutbox();
    EXPECT_EQ(out_.replies.size(), 1u);
    if (out_.replies.empty()) return {};
    EXPECT_EQ(out_.replies[0].request_id, id);
    EXPECT_EQ(out_.replies[0].conn, kConn);
    return out_.replies[0];
  }
  void Corrupt(const std::string& name) {
    std::string path = Dir() + "/" + name.substr(0, 2) + "/" + name;
    auto raw = ReadFileBytes(path, 1 << 24);
    ASSERT_TRUE(raw.ok());
    Bytes b = *raw;
    b[100 + rng_() % (b.size() - 100)] ^= 0x20;
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  }
  // Runs OnTick at every wake-up until `until`, answering calls with Ok.
  void RunUntil(uint64_t until, std::vector<pb::Envelope>* calls = nullptr) {
    for (int guard = 0; guard < 1'000'000; guard++) {
      uint64_t next = core_->NextWakeMs(now_);
      ASSERT_GE(next, now_);
      if (next > until) break;
      now_ = next;
      core_->OnTick(now_);
      AgentOutbox o = core_->TakeOutbox();
      for (auto& c : o.calls) {
        if (calls) calls->push_back(c.msg);
        core_->OnCallDone(now_, c.token, Ok());
      }
    }
    now_ = until;
  }

  static constexpr uint64_t kConn = 5;
  uint32_t seed_ = 0;
  std::mt19937 rng_;
  TempDir tmp_;
  std::optional<FragmentStore> store_;
  std::optional<AgentCore> core_;
  AgentOutbox out_;
  uint64_t now_ = 1'000'000;
};

TEST(FailureDomainsTest, Parse) {
  auto d = ParseFailureDomains("cabinet=c12,power=p3");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, (std::vector<std::string>{"cabinet=c12", "power=p3"}));
  EXPECT_TRUE(ParseFailureDomains("")->empty());
  for (const char* bad : {"cabinet", "=x", "x=", "a=b,", ",a=b", "a=b=c", "a b=c", "a=b c"})
    EXPECT_FALSE(ParseFailureDomains(bad).ok()) << bad;
}

TEST_F(AgentCoreTest, RegistrationSendsFullInventoryThenHeartbeats) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  Fill(3, 5000);
  // A torn file found at open is listed as bad in the inventory.
  std::string torn = store_->index().begin()->first;
  ASSERT_EQ(truncate((Dir() + "/" + torn.substr(0, 2) + "/" + torn).c_str(), 60), 0);
  OpenStore(uint64_t(1) << 40, /*verify=*/false);
  ASSERT_EQ(store_->fragment_count(), 8u);
  MakeCore(Params());
  core_->OnTick(now_);  // not registered: nothing to send
  EXPECT_TRUE(core_->TakeOutbox().calls.empty());

  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  ASSERT_EQ(o.calls.size(), 2u);
  ASSERT_TRUE(o.calls[0].msg.has_gateway_inventory());
  const auto& inv = o.calls[0].msg.gateway_inventory();
  std::set<std::string> held;
  for (auto& [n, sz] : store_->index()) held.insert(n);
  EXPECT_EQ(Names(inv.fragments()), held);
  EXPECT_EQ(Names(inv.bad()), std::set<std::string>{torn});
  EXPECT_EQ(inv.inventory_digest(), S(InventoryDigest({held.begin(), held.end()})));
  ASSERT_TRUE(o.calls[1].msg.has_gateway_heartbeat());
  const auto& hb = o.calls[1].msg.gateway_heartbeat();
  EXPECT_EQ(hb.store_bytes_max(), uint64_t(1) << 40);
  EXPECT_EQ(hb.store_bytes_free(), (uint64_t(1) << 40) - store_->used_bytes());
  EXPECT_EQ(hb.fragment_count(), 8u);
  EXPECT_EQ(hb.inventory_digest(), inv.inventory_digest());
  EXPECT_EQ(std::vector<std::string>(hb.failure_domains().begin(), hb.failure_domains().end()),
            (std::vector<std::string>{"cabinet=c12", "power=p3"}));
  AnswerAll(o, Ok());
  EXPECT_TRUE(store_->bad_unreported().empty());

  // Heartbeats every heartbeat_ms; the wake-up time says so.
  EXPECT_LE(core_->NextWakeMs(now_), now_ + 3000);
  std::vector<pb::Envelope> calls;
  const uint64_t t0 = now_;
  RunUntil(t0 + 30'000, &calls);
  size_t beats = 0;
  for (auto& c : calls) beats += c.has_gateway_heartbeat();
  EXPECT_EQ(beats, 10u);
  EXPECT_EQ(core_->stats().heartbeats_acked, 11u);
}

TEST_F(AgentCoreTest, AtMostOneHeartbeatInFlightAndLostConnectionRecovers) {
  OpenStore();
  MakeCore(Params());
  core_->OnRegistered(now_, kConn);
  AgentOutbox first = core_->TakeOutbox();
  ASSERT_EQ(first.calls.size(), 2u);
  // The POP does not answer: later ticks send no second heartbeat.
  for (int i = 1; i <= 5; i++) {
    now_ += 3000;
    core_->OnTick(now_);
    EXPECT_TRUE(core_->TakeOutbox().calls.empty()) << i;
  }
  // The connection drops: calls fail; after re-registration all resumes.
  core_->OnPopLost(now_);
  AnswerAll(first, Unavailable("connection closed"));
  core_->OnRegistered(now_, kConn + 1);
  AgentOutbox again = core_->TakeOutbox();
  ASSERT_EQ(again.calls.size(), 2u);
  EXPECT_TRUE(again.calls[0].msg.has_gateway_inventory());
  EXPECT_TRUE(again.calls[1].msg.has_gateway_heartbeat());
}

TEST_F(AgentCoreTest, PopWithoutHandlersIsTolerated) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  Fill(2, 3000);
  MakeCore(Params());
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Refused());
  // A bad fragment found on read: reported, refused, not resent forever.
  std::string victim = store_->index().begin()->first;
  Corrupt(victim);
  Bytes id;
  uint32_t index = 0;
  ASSERT_TRUE(ParseFragmentName(victim, &id, &index));
  pb::Envelope req;
  req.mutable_fetch_fragment()->set_chunk_id(S(id));
  req.mutable_fetch_fragment()->set_index(index);
  auto r = Request(req);
  EXPECT_EQ(r.error.code(), Code::kCorrupt);
  ASSERT_EQ(out_.calls.size(), 1u);
  ASSERT_TRUE(out_.calls[0].msg.has_fragments_bad());
  AnswerAll(out_, Refused());
  std::vector<pb::Envelope> calls;
  RunUntil(now_ + 12'000, &calls);
  size_t beats = 0, bad = 0;
  for (auto& c : calls) {
    beats += c.has_gateway_heartbeat();
    bad += c.has_fragments_bad();
  }
  EXPECT_EQ(beats, 4u);  // heartbeats go on after every refusal
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(core_->stats().heartbeats_acked, 4u);
}

TEST_F(AgentCoreTest, StoreFetchFullStoreAndBadOnRead) {
  SCOPED_TRACE(SeedTrace(seed_));
  std::vector<Bytes> frags = Fragments(8000, 2, 2);
  OpenStore(frags[0].size() * 3);  // room for three of the four
  MakeCore(Params());
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Ok());
  for (int i = 0; i < 3; i++) {
    pb::Envelope req;
    req.mutable_store_fragment()->set_fragment(S(frags[i]));
    auto r = Request(req, 100 + i);
    EXPECT_TRUE(r.error.ok()) << r.error.ToString();
    EXPECT_TRUE(r.msg.has_empty());
  }
  pb::Envelope full;
  full.mutable_store_fragment()->set_fragment(S(frags[3]));
  auto r = Request(full);
  EXPECT_EQ(r.error.code(), Code::kResourceExhausted) << r.error.ToString();
  EXPECT_NE(r.error.message().find("full"), std::string::npos);
  EXPECT_EQ(store_->fragment_count(), 3u);

  Bytes id(frags[0].begin() + 8, frags[0].begin() + 40);
  pb::Envelope fetch;
  fetch.mutable_fetch_fragment()->set_chunk_id(S(id));
  fetch.mutable_fetch_fragment()->set_index(1);
  r = Request(fetch);
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(r.msg.fragment_data().fragment(), S(frags[1]));

  Corrupt(FragmentName(id, 1));
  r = Request(fetch);
  EXPECT_EQ(r.error.code(), Code::kCorrupt);
  ASSERT_EQ(out_.calls.size(), 1u);
  EXPECT_EQ(Names(out_.calls[0].msg.fragments_bad().fragments()),
            std::set<std::string>{FragmentName(id, 1)});
  // Lost with the connection: sent again after re-registration (in the
  // inventory's bad list).
  AnswerAll(out_, Unavailable("connection closed"));
  core_->OnPopLost(now_);
  r = Request(fetch);
  EXPECT_EQ(r.error.code(), Code::kNotFound);  // never served again
  EXPECT_TRUE(out_.calls.empty());             // nobody to report to now
  core_->OnRegistered(now_, kConn);
  o = core_->TakeOutbox();
  ASSERT_TRUE(o.calls[0].msg.has_gateway_inventory());
  EXPECT_EQ(Names(o.calls[0].msg.gateway_inventory().bad()),
            std::set<std::string>{FragmentName(id, 1)});
  EXPECT_EQ(o.calls[0].msg.gateway_inventory().fragments_size(), 2);
  // The heartbeat shows the freed space and the new digest.
  const auto& hb = o.calls[1].msg.gateway_heartbeat();
  EXPECT_EQ(hb.fragment_count(), 2u);
  EXPECT_EQ(hb.store_bytes_free(), frags[0].size());
  EXPECT_EQ(hb.inventory_digest(), S(InventoryDigest({FragmentName(id, 0), FragmentName(id, 2)})));
}

TEST_F(AgentCoreTest, GetInventoryAndDeleteFragments) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  Fill(4, 2000);
  MakeCore(Params());
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Ok());
  std::vector<std::string> names;
  for (auto& [n, sz] : store_->index()) names.push_back(n);
  pb::Envelope del;
  for (size_t i = 0; i < names.size(); i += 3) {
    Bytes id;
    uint32_t index = 0;
    ASSERT_TRUE(ParseFragmentName(names[i], &id, &index));
    auto* ref = del.mutable_delete_fragments()->add_fragments();
    ref->set_chunk_id(S(id));
    ref->set_index(index);
  }
  auto* unknown = del.mutable_delete_fragments()->add_fragments();  // not held: fine
  unknown->set_chunk_id(std::string(32, '\x7f'));
  unknown->set_index(3);
  auto r = Request(del);
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  std::set<std::string> left;
  for (size_t i = 0; i < names.size(); i++) {
    std::string path = Dir() + "/" + names[i].substr(0, 2) + "/" + names[i];
    EXPECT_EQ(FileExists(path), i % 3 != 0) << names[i];
    if (i % 3) left.insert(names[i]);
  }
  EXPECT_EQ(core_->stats().fragments_deleted, (names.size() + 2) / 3);
  pb::Envelope get;
  get.mutable_get_inventory();
  r = Request(get);
  ASSERT_TRUE(r.msg.has_gateway_inventory());
  EXPECT_EQ(Names(r.msg.gateway_inventory().fragments()), left);
  EXPECT_EQ(r.msg.gateway_inventory().inventory_digest(),
            S(InventoryDigest({left.begin(), left.end()})));
  // A malformed id is refused.
  pb::Envelope bad;
  bad.mutable_delete_fragments()->add_fragments()->set_chunk_id("short");
  EXPECT_EQ(Request(bad).error.code(), Code::kInvalidArgument);
  // Requests the agent does not serve from a POP.
  pb::Envelope other;
  other.mutable_get_cluster_map();
  EXPECT_FALSE(core_->IsPopRequest(other));
  EXPECT_EQ(Request(other).error.code(), Code::kProtocol);
}

TEST_F(AgentCoreTest, ScrubReadsEverythingWithinThePeriodAndReportsBad) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  Fill(20, 6000);  // 60 fragments of ~3 KB
  const size_t n = store_->fragment_count();
  AgentParams p = Params();
  p.scrub_period_ms = 600'000;  // 10 min
  MakeCore(p);
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Ok());
  // Rot in two files, found only by reading them.
  auto it = store_->index().begin();
  std::string bad1 = it->first;
  std::advance(it, n / 2);
  std::string bad2 = it->first;
  Corrupt(bad1);
  Corrupt(bad2);
  const uint64_t t0 = now_;
  std::vector<pb::Envelope> calls;
  // Halfway through the period, about half has been read: paced, not rushed.
  RunUntil(t0 + 300'000, &calls);
  EXPECT_GE(core_->stats().scrub_fragments, n / 2 - 2);
  EXPECT_LE(core_->stats().scrub_fragments, n / 2 + 2);
  RunUntil(t0 + 599'999, &calls);
  EXPECT_EQ(core_->scrub_passes_total(), 1u);
  EXPECT_EQ(core_->stats().scrub_fragments, n);
  EXPECT_EQ(core_->stats().scrub_bad, 2u);
  EXPECT_EQ(core_->stats().scrub_late_passes, 0u);
  EXPECT_EQ(store_->fragment_count(), n - 2);
  std::set<std::string> reported;
  for (auto& c : calls)
    if (c.has_fragments_bad())
      for (auto& nm : Names(c.fragments_bad().fragments())) reported.insert(nm);
  EXPECT_EQ(reported, (std::set<std::string>{bad1, bad2}));
  EXPECT_EQ(core_->stats().bad_reported, 2u);
  // The heartbeat carries the completed passes. The second pass starts one
  // period after the first (its first read at once, the next 600 s / 58
  // later).
  RunUntil(t0 + 603'000, &calls);
  EXPECT_EQ(calls.back().gateway_heartbeat().scrub_passes_total(), 1u);
  EXPECT_EQ(core_->stats().scrub_fragments, n + 1);
  RunUntil(t0 + 1'199'999, nullptr);
  EXPECT_EQ(core_->scrub_passes_total(), 2u);
  EXPECT_EQ(core_->stats().scrub_fragments, n + n - 2);
}

TEST_F(AgentCoreTest, ScrubNeverExceedsTheBackgroundRate) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  Fill(30, 40'000);  // 90 fragments of ~20 KB: 1.8 MB
  AgentParams p = Params();
  p.scrub_period_ms = 1000;               // wants it all in 1 s...
  p.background_io_bytes_per_s = 100'000;  // ...but only 100 kB/s allowed
  p.background_io_burst_bytes = 50'000;
  MakeCore(p);
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Ok());
  const uint64_t t0 = now_;
  const uint64_t frag = store_->index().begin()->second;
  for (uint64_t s = 1; s <= 10; s++) {
    RunUntil(t0 + s * 1000, nullptr);
    EXPECT_LE(core_->stats().scrub_bytes, 100'000 * s + 50'000 + frag) << "after " << s << " s";
    EXPECT_GE(core_->stats().scrub_bytes, 100'000 * s + 50'000 - frag) << "after " << s << " s";
  }
  // The heartbeat's load: the whole background share in use.
  std::vector<pb::Envelope> calls;
  RunUntil(t0 + 13'000, &calls);
  ASSERT_FALSE(calls.empty());
  EXPECT_GE(calls.back().gateway_heartbeat().load_permille(), 900u);
  RunUntil(t0 + 60'000, nullptr);
  EXPECT_GE(core_->scrub_passes_total(), 1u);
  EXPECT_GE(core_->stats().scrub_late_passes, 1u);
}

TEST_F(AgentCoreTest, BackgroundFetchesAreRateLimitedBoundedAndDroppedWithTheConnection) {
  SCOPED_TRACE(SeedTrace(seed_));
  OpenStore();
  std::vector<Bytes> frags = Fragments(200'000, 2, 1);  // ~100 KB each
  for (auto& b : frags) ASSERT_TRUE(store_->Put(b).ok());
  AgentParams p = Params();
  p.background_io_bytes_per_s = 100'000;
  p.background_io_burst_bytes = 10'000;
  p.background_fetch_queue_max = 2;
  p.scrub_period_ms = 1000ull * 3600 * 24 * 365;
  MakeCore(p);
  core_->OnRegistered(now_, kConn);
  AgentOutbox o = core_->TakeOutbox();
  AnswerAll(o, Ok());
  // The scrubber's first read already spent the burst: these queue.
  RunUntil(now_ + 1, nullptr);
  Bytes id(frags[0].begin() + 8, frags[0].begin() + 40);
  auto fetch = [&](uint32_t index, uint64_t rid) {
    pb::Envelope req;
    req.set_request_id(rid);
    req.mutable_fetch_fragment()->set_chunk_id(S(id));
    req.mutable_fetch_fragment()->set_index(index);
    req.mutable_fetch_fragment()->set_background(true);
    core_->OnPopRequest(now_, kConn, req);
    return core_->TakeOutbox();
  };
  EXPECT_TRUE(fetch(0, 1).replies.empty());
  EXPECT_TRUE(fetch(1, 2).replies.empty());
  AgentOutbox refused = fetch(2, 3);
  ASSERT_EQ(refused.replies.size(), 1u);
  EXPECT_EQ(refused.replies[0].error.code(), Code::kResourceExhausted);
  EXPECT_EQ(core_->background_fetches_queued(), 2u);
  // Served one by one as the bucket allows (~1 s per 100 KB).
  std::vector<uint64_t> served_at;
  for (int guard = 0; guard < 100 && served_at.size() < 2; guard++) {
    now_ = core_->NextWakeMs(now_);
    core_->OnTick(now_);
    for (auto& r : core_->TakeOutbox().replies) {
      ASSERT_TRUE(r.error.ok()) << r.error.ToString();
      EXPECT_EQ(r.msg.fragment_data().fragment(), S(frags[r.request_id - 1]));
      served_at.push_back(now_);
    }
  }
  ASSERT_EQ(served_at.size(), 2u);
  EXPECT_GE(served_at[1] - served_at[0], 900u);
  // A foreground fetch is served at once even while the bucket is in debt.
  pb::Envelope fg;
  fg.mutable_fetch_fragment()->set_chunk_id(S(id));
  fg.mutable_fetch_fragment()->set_index(2);
  EXPECT_TRUE(Request(fg).error.ok());
  // Queued ones die with their connection.
  EXPECT_TRUE(fetch(0, 4).replies.empty());
  core_->OnPopLost(now_);
  EXPECT_EQ(core_->background_fetches_queued(), 0u);
}

}  // namespace
}  // namespace mistore

namespace mistore {
namespace {

pb::HeldResult Kept(const std::string& subscriber, const std::string& write_id, uint64_t version) {
  pb::HeldResult r;
  r.set_subscriber(subscriber);
  r.set_write_id(write_id);
  r.mutable_put_reply()->set_oid(std::string(16, 'o'));
  r.mutable_put_reply()->set_version(version);
  return r;
}

// Issue 6 (paper VII): results the POP kept while this gateway was away are
// delivered on its return; the client's retry of the write id is answered
// with them. Another subscriber's results are never kept; the list is
// bounded and expires.
TEST_F(AgentCoreTest, KeptResultsDeliveredByThePopAnswerRetries) {
  OpenStore();
  AgentParams p = Params();
  p.subscriber = "alice";
  p.held_results_max = 3;
  p.held_results_ms = 10'000;
  MakeCore(p);
  pb::Envelope e;
  *e.mutable_held_results()->add_results() = Kept("alice", "w1", 4);
  *e.mutable_held_results()->add_results() = Kept("mallory", "w2", 9);
  EXPECT_TRUE(core_->IsPopRequest(e));
  auto r = Request(e);
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_TRUE(r.msg.has_empty());
  EXPECT_EQ(core_->stats().results_received, 1u);
  const pb::PutReply* got = core_->HeldReply(now_, "w1");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->version(), 4u);
  EXPECT_EQ(core_->HeldReply(now_, "w2"), nullptr) << "another subscriber's result kept";
  EXPECT_EQ(core_->stats().results_answered, 1u);
  // Bounded: the oldest goes first.
  for (int i = 0; i < 3; i++) {
    pb::PutReply pr;
    pr.set_version(10 + i);
    core_->HoldReply(now_ + 1 + i, "x" + std::to_string(i), pr);
  }
  EXPECT_EQ(core_->held_replies(), 3u);
  EXPECT_EQ(core_->HeldReply(now_ + 10, "w1"), nullptr) << "beyond held_results_max";
  ASSERT_NE(core_->HeldReply(now_ + 10, "x0"), nullptr);
  EXPECT_EQ(core_->HeldReply(now_ + 10, "x2")->version(), 12u);
  // Expired after held_results_ms.
  EXPECT_EQ(core_->HeldReply(now_ + 1 + 10'000, "x0"), nullptr);
  EXPECT_EQ(core_->HeldReply(now_, ""), nullptr);
}

// Issue 7: the cluster map reaches the agent (HelloReply, then pushes on
// epoch changes); the newest epoch is kept, an older map is ignored and
// counted, and the POPs of the agent's region are what it learns.
pb::ClusterMap Map(uint64_t epoch, std::vector<std::tuple<uint32_t, std::string, bool>> pops) {
  pb::ClusterMap m;
  m.set_epoch(epoch);
  for (auto& [id, region, up] : pops) {
    auto* p = m.add_pops();
    p->set_pop_id(id);
    p->set_region(region);
    p->set_addr("10.0.0." + std::to_string(id) + ":7100");
    p->set_up(up);
  }
  return m;
}

TEST_F(AgentCoreTest, ClusterMapEpochsNeverGoBackAndTheRegionsPopsAreLearned) {
  OpenStore();
  MakeCore(Params());
  EXPECT_EQ(core_->map_epoch(), 0u);
  core_->OnRegistered(now_, kConn, 1);
  // Registration: the HelloReply's map (the POP sends its region's part, but
  // a full map is filtered by the region of the POP it came from).
  EXPECT_TRUE(core_->OnClusterMap(now_, Map(4, {{1, "eu", true}, {2, "eu", true},
                                                {3, "us", true}, {5, "eu", false}}), 1));
  EXPECT_EQ(core_->map_epoch(), 4u);
  EXPECT_EQ(core_->region_pops(),
            (std::vector<RegionPop>{{1, "10.0.0.1:7100", true}, {2, "10.0.0.2:7100", true},
                                    {5, "10.0.0.5:7100", false}}));
  EXPECT_EQ(core_->UpPopAddrs(), (std::vector<std::string>{"10.0.0.1:7100", "10.0.0.2:7100"}));
  // A push on an epoch change, answered.
  pb::Envelope push;
  *push.mutable_cluster_map() = Map(6, {{1, "eu", true}, {2, "eu", false}, {5, "eu", true}});
  EXPECT_TRUE(core_->IsPopRequest(push));
  auto r = Request(push);
  EXPECT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_TRUE(r.msg.has_empty());
  EXPECT_EQ(core_->map_epoch(), 6u);
  EXPECT_EQ(core_->UpPopAddrs(), (std::vector<std::string>{"10.0.0.1:7100", "10.0.0.5:7100"}));
  // An older map (a slow push, a POP behind): ignored and counted.
  push.mutable_cluster_map()->CopyFrom(Map(5, {{1, "eu", true}}));
  r = Request(push, 78);
  EXPECT_TRUE(r.error.ok());
  EXPECT_EQ(core_->map_epoch(), 6u);
  EXPECT_EQ(core_->region_pops().size(), 3u);
  EXPECT_EQ(core_->stats().maps_stale, 1u);
  // The same epoch again (a re-registration): nothing changes, not stale.
  EXPECT_FALSE(core_->OnClusterMap(now_, Map(6, {{1, "eu", true}}), 1));
  EXPECT_EQ(core_->region_pops().size(), 3u);
  EXPECT_EQ(core_->stats().maps_stale, 1u);
  EXPECT_EQ(core_->stats().maps_applied, 2u);
  // Bounded: at most kRegionPopsMax POPs kept.
  std::vector<std::tuple<uint32_t, std::string, bool>> many;
  for (uint32_t id = 1; id <= 40; id++) many.push_back({id, "eu", true});
  EXPECT_TRUE(core_->OnClusterMap(now_, Map(7, many), 1));
  EXPECT_EQ(core_->region_pops().size(), AgentCore::kRegionPopsMax);
}

}  // namespace
}  // namespace mistore
