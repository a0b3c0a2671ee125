// EventLog (dc-backend/event_log.h) on SQLite in a temp dir: the cap drops
// the oldest, the log survives closing and reopening, re-sent events (same
// origin) are stored once, and queries filter by time, kind, POP, gateway
// and limit, newest first.
#include "dc-backend/event_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace mistore {
namespace {

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mistore_event_log_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    ASSERT_NE(p, nullptr);
    dir_ = p;
  }
  void TearDown() override {
    log_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::unique_ptr<EventLog> OpenLog(size_t max) {
    auto db = OpenSqliteDriver(dir_ + "/events.sqlite");
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    auto log = EventLog::Open(std::move(db.value()), max);
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    return std::move(log.value());
  }
  static EventRecord Ev(int64_t t, const std::string& kind, uint32_t pop, uint32_t gw,
                        const std::string& origin = "") {
    EventRecord e;
    e.t_ms = t;
    e.kind = kind;
    e.source = origin.empty() ? "dc" : "pop";
    e.pop = pop;
    e.gateway = gw;
    e.region = "r" + std::to_string(pop);
    e.detail = kind + " at " + std::to_string(t);
    e.origin = origin;
    return e;
  }
  std::vector<EventRecord> Q(EventQuery q) {
    auto r = log_->Query(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r.value() : std::vector<EventRecord>{};
  }

  std::string dir_;
  std::unique_ptr<EventLog> log_;
};

TEST_F(EventLogTest, CapDropsTheOldest) {
  log_ = OpenLog(5);
  for (int i = 1; i <= 8; i++) {
    auto n = log_->Append({Ev(1000 + i, "gateway_lost", 1, 1000 + uint32_t(i))});
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n.value(), 1u);
  }
  EXPECT_EQ(log_->Count().value(), 5u);
  EXPECT_EQ(log_->pruned_total(), 3u);
  auto all = Q({});
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.front().t_ms, 1008);  // newest first
  EXPECT_EQ(all.back().t_ms, 1004);   // 1001-1003 dropped
  // A batch larger than the cap keeps its newest events.
  std::vector<EventRecord> batch;
  for (int i = 0; i < 12; i++) batch.push_back(Ev(2000 + i, "pop_down", 2, 0));
  ASSERT_TRUE(log_->Append(batch).ok());
  all = Q({});
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all.front().t_ms, 2011);
  EXPECT_EQ(all.back().t_ms, 2007);
  EXPECT_FALSE(log_->Append(std::vector<EventRecord>(EventLog::kAppendBatchMax + 1,
                                                     Ev(1, "x", 1, 0))).ok());
  EXPECT_FALSE(EventLog::Open(OpenSqliteDriver(dir_ + "/other.sqlite").value(), 0).ok());
}

TEST_F(EventLogTest, SurvivesReopenAndKeepsNumbering) {
  log_ = OpenLog(100);
  ASSERT_TRUE(log_->Append({Ev(10, "pop_joined", 1, 0), Ev(20, "gateway_lost", 1, 1001, "p1/7/1")}).ok());
  uint64_t last = log_->LastSeq().value();
  EXPECT_EQ(last, 2u);
  log_.reset();
  log_ = OpenLog(100);
  auto all = Q({});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].kind, "gateway_lost");
  EXPECT_EQ(all[0].gateway, 1001u);
  EXPECT_EQ(all[0].source, "pop");
  EXPECT_EQ(all[0].region, "r1");
  EXPECT_EQ(all[0].detail, "gateway_lost at 20");
  EXPECT_EQ(all[1].kind, "pop_joined");
  // A POP's batch re-sent after a lost acknowledgement (same origins) is
  // stored once, also across the restart.
  auto n = log_->Append({Ev(20, "gateway_lost", 1, 1001, "p1/7/1"), Ev(30, "repair_started", 1, 1001, "p1/7/2")});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), 1u);
  EXPECT_EQ(log_->Count().value(), 3u);
  EXPECT_GT(log_->LastSeq().value(), last);
}

TEST_F(EventLogTest, FiltersByTimeKindPopGatewayAndLimit) {
  log_ = OpenLog(1000);
  std::vector<EventRecord> evs;
  for (int i = 0; i < 30; i++) {
    const char* kinds[] = {"gateway_suspected", "gateway_lost", "repair_finished"};
    evs.push_back(Ev(1000 * i, kinds[i % 3], uint32_t(1 + i % 2), uint32_t(1000 + i)));
  }
  EventRecord role = Ev(40000, "role_change", 1, 0);
  role.about_pop = 2;
  evs.push_back(role);
  ASSERT_TRUE(log_->Append(evs).ok());

  EventQuery q;
  q.since_ms = 25000;
  auto r = Q(q);
  ASSERT_EQ(r.size(), 6u);  // 25000..29000 and the role change
  for (size_t i = 1; i < r.size(); i++) EXPECT_GT(r[i - 1].seq, r[i].seq);

  q = {};
  q.kinds = {"gateway_lost"};
  r = Q(q);
  ASSERT_EQ(r.size(), 10u);
  for (auto& e : r) EXPECT_EQ(e.kind, "gateway_lost");
  EXPECT_EQ(r.front().t_ms, 28000);

  q.kinds = {"gateway_lost", "repair_finished"};
  q.limit = 3;
  r = Q(q);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].kind, "repair_finished");
  EXPECT_EQ(r[0].t_ms, 29000);
  EXPECT_EQ(r[1].t_ms, 28000);

  q = {};
  q.gateway = 1004;
  r = Q(q);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, "gateway_lost");

  q = {};
  q.pop = 2;  // events from POP 2 and the role change about it
  r = Q(q);
  ASSERT_EQ(r.size(), 16u);
  EXPECT_EQ(r[0].kind, "role_change");

  q = {};
  q.after_seq = r[2].seq;  // only what is newer than a given event
  EXPECT_EQ(Q(q).size(), 3u);

  q = {};
  q.kinds = std::vector<std::string>(EventLog::kKindsMax + 1, "x");
  EXPECT_FALSE(log_->Query(q).ok());
  q = {};
  q.limit = 1u << 30;  // clamped, not an error
  EXPECT_EQ(Q(q).size(), 31u);
}

}  // namespace
}  // namespace mistore
