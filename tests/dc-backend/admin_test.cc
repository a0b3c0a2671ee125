// DcAdmin without sockets: requests go straight to Handle(); POP summaries
// straight to OnPopSummary(). The catalog is a real SQLite one in a temp dir.
#include "dc-backend/admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "pop-server/pop_report.h"
#include "shared/core/oid.h"
#include "tests/shared/store/store_test_util.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using store_test::TempDir;

const std::string kToken = "0123456789abcdef0123456789abcdef";

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = Catalog::Open(dir_.path() + "/dc");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    catalog_ = std::move(c.value());
    ASSERT_TRUE(catalog_->PopUp(1, "r1", "127.0.0.1:1").ok());
    ASSERT_TRUE(catalog_->PopUp(2, "r2", "127.0.0.1:2").ok());
    admin_ = std::make_unique<DcAdmin>(&loop_, catalog_.get(), &metrics_);
    auto bound = admin_->Serve("127.0.0.1:0", kToken);
    ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  }
  void TearDown() override { admin_.reset(); }

  HttpResponse Get(const std::string& target, const std::string& token = kToken) {
    HttpRequest r;
    r.method = "GET";
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.peer = "127.0.0.1:9";
    if (!token.empty()) r.headers.push_back({"authorization", "Bearer " + token});
    return admin_->Handle(r);
  }

  static pb::MonitorPopSummary Summary(uint32_t pop, int gateways, int lost = 0) {
    pb::MonitorPopSummary s;
    s.set_pop_id(pop);
    s.set_region("r" + std::to_string(pop));
    s.set_k(4);
    s.set_m(2);
    s.set_uptime_ms(1000);
    for (int i = 1; i <= gateways; i++) {
      auto* g = s.add_gateways();
      g->set_gateway_id(pop * 100000 + uint32_t(i));
      g->set_subscriber("sub" + std::to_string(i % 7));
      g->set_connected(i > lost);
      g->set_store_bytes_free(1 << 30);
    }
    return s;
  }

  TempDir dir_;
  EventLoop loop_;
  MetricsRegistry metrics_;
  std::unique_ptr<Catalog> catalog_;
  std::unique_ptr<DcAdmin> admin_;
};

TEST_F(AdminTest, EveryApiPathNeedsTheToken) {
  for (const char* path : {"/api/overview", "/api/pops/1", "/api/gateways/1", "/api/events",
                           "/api/history", "/api/subscribers", "/api/repairs", "/api/x", "/api",
                           "/api/objects/00000000000000000000000000000000"}) {
    HttpResponse r = Get(path, "");
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_THAT(r.body, Not(HasSubstr("r1"))) << path;
    EXPECT_EQ(Get(path, kToken.substr(1) + "0").status, 401) << path;
    EXPECT_EQ(Get(path, kToken + "0").status, 401) << path;
  }
  EXPECT_EQ(Get("/api/overview").status, 200);
  EXPECT_EQ(Get("/api/nothing").status, 404);
  // The dashboard itself is public.
  HttpResponse page = Get("/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.content_type, HasSubstr("text/html"));
  EXPECT_THAT(page.body, HasSubstr("/app.js"));
  EXPECT_EQ(Get("/app.js", "").status, 200);
  EXPECT_EQ(Get("/app.css", "").status, 200);
  EXPECT_EQ(Get("/secret", "").status, 404);
  EXPECT_THAT(metrics_.Exposition(), HasSubstr("mistore_admin_requests_total{result=\"unauthorized\"} 30\n"));
}

TEST_F(AdminTest, SummariesDriveTheHierarchyAndTheEventLog) {
  pb::Envelope reply;
  EXPECT_FALSE(admin_->OnPopSummary(2, Summary(1, 8), &reply).ok()) << "a POP reports only for itself";
  EXPECT_FALSE(admin_->OnPopSummary(0, Summary(1, 8), &reply).ok());
  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 8), &reply).ok());
  EXPECT_TRUE(reply.has_empty());
  HttpResponse ov = Get("/api/overview");
  ASSERT_EQ(ov.status, 200);
  EXPECT_THAT(ov.body, HasSubstr("\"pop_id\":1,\"region\":\"r1\""));
  EXPECT_THAT(ov.body, HasSubstr("\"gateway_counts\":{\"up\":8,\"lost\":0,\"unknown\":0,\"total\":8}"));
  EXPECT_THAT(ov.body, HasSubstr("{\"id\":100003,\"state\":\"up\""));
  // POP 2 is in the map but has not reported: its health says so.
  EXPECT_THAT(ov.body, HasSubstr("\"pop_id\":2,\"region\":\"r2\",\"addr\":\"127.0.0.1:2\",\"up\":true,"
                                 "\"reporting\":false,\"health\":\"silent\""));

  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 8, /*lost=*/1), &reply).ok());
  ov = Get("/api/overview");
  EXPECT_THAT(ov.body, HasSubstr("{\"id\":100001,\"state\":\"lost\""));
  EXPECT_THAT(ov.body, HasSubstr("\"health\":\"degraded\",\"redundancy\":\"degraded\""));
  HttpResponse ev = Get("/api/events");
  EXPECT_THAT(ev.body, HasSubstr("\"kind\":\"pop_reporting\""));
  // A disconnection is not a loss: that is the POP's failure detector's
  // call, reported as an event (OnPopEvents), not guessed from summaries.
  EXPECT_THAT(ev.body, Not(HasSubstr("\"kind\":\"gateway_lost\"")));
  HttpResponse gw = Get("/api/gateways/100001");
  EXPECT_EQ(gw.status, 200);
  EXPECT_THAT(gw.body, HasSubstr("\"state\":\"lost\",\"pop_id\":1"));
  EXPECT_EQ(Get("/api/gateways/7").status, 404);
  EXPECT_EQ(Get("/api/gateways/abc").status, 400);

  // More than m lost in a region (or fewer than k+m connected): data at risk.
  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 8, /*lost=*/3), &reply).ok());
  EXPECT_THAT(Get("/api/overview").body, HasSubstr("\"health\":\"critical\",\"redundancy\":\"at_risk\""));
  // Back again.
  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 8), &reply).ok());
  EXPECT_THAT(metrics_.Exposition(), HasSubstr("mistore_dc_gateways{state=\"connected\"} 8\n"));
  // A gateway first seen after the POP's first summary has joined.
  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 9), &reply).ok());
  EXPECT_THAT(Get("/api/events").body, HasSubstr("\"kind\":\"gateway_joined\",\"source\":\"dc\",\"pop\":1,\"gateway\":100009"));
}

pb::PopEvent PopEv(uint64_t seq, pb::PopEventKind kind, uint32_t gw, uint64_t age_ms = 0) {
  pb::PopEvent e;
  e.set_seq(seq);
  e.set_kind(kind);
  e.set_gateway_id(gw);
  e.set_age_ms(age_ms);
  e.set_count(3);
  e.set_detail("event " + std::to_string(seq));
  return e;
}

TEST_F(AdminTest, PopEventsAreLoggedOnceAndFiltered) {
  pb::Envelope reply;
  ASSERT_TRUE(admin_->OnPopSummary(1, Summary(1, 4), &reply).ok());
  pb::PopEventReport r;
  r.set_pop_id(1);
  r.set_boot_id(0xabc);
  *r.add_events() = PopEv(1, pb::POP_EVENT_GATEWAY_SUSPECTED, 100002, 20000);
  *r.add_events() = PopEv(2, pb::POP_EVENT_GATEWAY_LOST, 100002, 5000);
  *r.add_events() = PopEv(3, pb::POP_EVENT_REPAIR_STARTED, 100002, 5000);
  EXPECT_EQ(admin_->OnPopEvents(2, r, &reply).code(), Code::kPermissionDenied)
      << "a POP reports only its own events";
  reply.Clear();
  ASSERT_TRUE(admin_->OnPopEvents(1, r, &reply).ok());
  EXPECT_TRUE(reply.has_empty());
  // The acknowledgement was lost and the POP sends the batch again, with one more.
  *r.add_events() = PopEv(4, pb::POP_EVENT_REPAIR_FINISHED, 100002, 0);
  ASSERT_TRUE(admin_->OnPopEvents(1, r, &reply).ok());
  std::string all = Get("/api/events?kind=gateway_suspected,gateway_lost,repair_started,repair_finished").body;
  EXPECT_THAT(all, HasSubstr("\"kind\":\"repair_finished\",\"source\":\"pop\",\"pop\":1,"
                             "\"gateway\":100002,\"region\":\"r1\",\"count\":3,\"detail\":\"event 4\""));
  size_t n = 0;
  for (size_t at = 0; (at = all.find("\"seq\":", at)) != std::string::npos; at++) n++;
  EXPECT_EQ(n, 4u) << all;
  // Newest first; the POP's ages become times.
  EXPECT_LT(all.find("repair_finished"), all.find("gateway_suspected"));
  HttpResponse lost = Get("/api/events?kind=gateway_lost&limit=5");
  EXPECT_THAT(lost.body, HasSubstr("\"kind\":\"gateway_lost\""));
  EXPECT_THAT(lost.body, Not(HasSubstr("\"kind\":\"gateway_suspected\"")));
  EXPECT_EQ(Get("/api/events?kind=no_such_kind").status, 400);
  EXPECT_EQ(Get("/api/events?limit=abc").status, 400);
  // since: wall-clock ms; the suspicion happened 20 s before the report.
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  std::string recent = Get("/api/events?since=" + std::to_string(now_ms - 10000)).body;
  EXPECT_THAT(recent, HasSubstr("\"kind\":\"gateway_lost\""));
  EXPECT_THAT(recent, Not(HasSubstr("\"kind\":\"gateway_suspected\"")));
  EXPECT_THAT(Get("/api/events?gateway=100002&limit=1").body, HasSubstr("repair_finished"));
  EXPECT_THAT(Get("/api/gateways/100002").body, HasSubstr("\"kind\":\"gateway_lost\""));
  // The POP's buffer overflowed: the DC logs how many it lost.
  pb::PopEventReport d;
  d.set_pop_id(1);
  d.set_boot_id(0xabc);
  d.set_dropped_total(17);
  ASSERT_TRUE(admin_->OnPopEvents(1, d, &reply).ok());
  EXPECT_THAT(Get("/api/events?kind=pop_events_dropped").body, HasSubstr("\"count\":17"));
  // Bounded batches.
  pb::PopEventReport big;
  big.set_pop_id(1);
  for (uint64_t i = 1; i <= kPopEventBatchMax + 1; i++)
    *big.add_events() = PopEv(100 + i, pb::POP_EVENT_FRAGMENTS_BAD, 100003);
  EXPECT_EQ(admin_->OnPopEvents(1, big, &reply).code(), Code::kInvalidArgument);
  EXPECT_THAT(metrics_.Exposition(), HasSubstr("mistore_dc_events_total{kind=\"gateway_lost\"} 1\n"));
}

TEST_F(AdminTest, RepairStateComesFromTheSummaries) {
  pb::Envelope reply;
  pb::MonitorPopSummary s = Summary(1, 8, /*lost=*/1);
  s.set_chunks_below_redundancy(40);
  ASSERT_TRUE(admin_->OnPopSummary(1, s, &reply).ok());
  HttpResponse r = Get("/api/repairs/1");
  ASSERT_EQ(r.status, 200);
  // Below redundancy, but the gateway is within its grace period: waiting.
  EXPECT_THAT(r.body, HasSubstr("\"redundancy\":\"degraded\""));
  EXPECT_THAT(r.body, HasSubstr("\"chunks_below_redundancy\":40,\"repair\":{\"state\":\"waiting\""));
  // Lost: the repair runs. 1000 bytes done of 4000 since it began.
  s.set_repair_queue_chunks(30);
  s.set_repair_in_flight_chunks(4);
  s.set_repair_queue_bytes(4000);
  s.set_repair_bytes_total(500);
  s.set_repair_eta_s(2.5);
  s.set_gateways_lost(1);
  ASSERT_TRUE(admin_->OnPopSummary(1, s, &reply).ok());
  s.set_repair_queue_bytes(3000);
  s.set_repair_bytes_total(1500);
  ASSERT_TRUE(admin_->OnPopSummary(1, s, &reply).ok());
  r = Get("/api/repairs/1");
  EXPECT_THAT(r.body, HasSubstr("\"redundancy\":\"repairing\""));
  EXPECT_THAT(r.body, HasSubstr("\"repair\":{\"state\":\"repairing\",\"queue_chunks\":30,"
                                "\"in_flight_chunks\":4,\"queue_bytes\":3000,\"bytes_done\":1000,"
                                "\"progress\":0.25,\"eta_s\":2.5"));
  EXPECT_THAT(r.body, HasSubstr("\"detector\":{\"suspected\":0,\"lost\":1}"));
  EXPECT_THAT(r.body, Not(HasSubstr("\"pop_id\":2")));  // one region asked for
  HttpResponse ov = Get("/api/overview");
  EXPECT_THAT(ov.body, HasSubstr("\"health\":\"degraded\",\"redundancy\":\"repairing\""));
  EXPECT_THAT(ov.body, HasSubstr("\"regions_below_redundancy\":1,\"chunks_below_redundancy\":40,"
                                 "\"repair_queue_chunks\":34,\"repair_queue_bytes\":3000"));
  EXPECT_EQ(Get("/api/repairs/99").status, 404);
  EXPECT_EQ(Get("/api/repairs/x").status, 400);
  // Drained: full again.
  pb::MonitorPopSummary done = Summary(1, 8);
  done.set_repair_bytes_total(4500);
  ASSERT_TRUE(admin_->OnPopSummary(1, done, &reply).ok());
  r = Get("/api/repairs");
  EXPECT_THAT(r.body, HasSubstr("\"redundancy\":\"full\""));
  EXPECT_THAT(r.body, HasSubstr("\"repair\":{\"state\":\"idle\""));
  EXPECT_THAT(r.body, HasSubstr("\"totals\":{\"chunks_below_redundancy\":0,\"repair_queue_chunks\":0"));
}

TEST_F(AdminTest, RoleChangesTheDcPublishesAreLogged) {
  uint64_t epoch = catalog_->Map().value().epoch();
  ASSERT_TRUE(catalog_->PopDown(2).ok());
  admin_->OnMapPublished();
  std::string ev = Get("/api/events?pop=2").body;
  EXPECT_THAT(ev, HasSubstr("\"kind\":\"pop_down\",\"source\":\"dc\",\"pop\":2"));
  EXPECT_THAT(ev, HasSubstr("the backups of its objects act as primary"));
  EXPECT_THAT(Get("/api/events?kind=epoch_bump").body,
              HasSubstr("epoch " + std::to_string(epoch) + " -> " + std::to_string(epoch + 1)));
  ASSERT_TRUE(catalog_->PopUp(2, "r2", "127.0.0.1:2").ok());
  admin_->OnMapPublished();
  EXPECT_THAT(Get("/api/events?kind=pop_up").body, HasSubstr("primary again for its objects"));
}

TEST_F(AdminTest, TheEventLogSurvivesARestartOfTheDc) {
  auto open = [&] {
    auto db = OpenSqliteDriver(dir_.path() + "/events.sqlite");
    EXPECT_TRUE(db.ok());
    auto log = EventLog::Open(std::move(db.value()), 100);
    EXPECT_TRUE(log.ok());
    return std::move(log.value());
  };
  // Events logged before the persistent log is opened are kept too.
  ASSERT_TRUE(catalog_->PopDown(1).ok());
  admin_->OnMapPublished();
  ASSERT_TRUE(admin_->UseEventLog(open()).ok());
  pb::Envelope reply;
  pb::PopEventReport r;
  r.set_pop_id(2);
  r.set_boot_id(1);
  *r.add_events() = PopEv(1, pb::POP_EVENT_GATEWAY_LOST, 200001);
  ASSERT_TRUE(admin_->OnPopEvents(2, r, &reply).ok());
  admin_.reset();
  MetricsRegistry fresh;  // the restarted DC's
  admin_ = std::make_unique<DcAdmin>(&loop_, catalog_.get(), &fresh);
  ASSERT_TRUE(admin_->UseEventLog(open()).ok());
  ASSERT_TRUE(admin_->Serve("127.0.0.1:0", kToken).ok());
  std::string ev = Get("/api/events").body;
  EXPECT_THAT(ev, HasSubstr("\"kind\":\"gateway_lost\",\"source\":\"pop\",\"pop\":2,\"gateway\":200001"));
  EXPECT_THAT(ev, HasSubstr("\"kind\":\"pop_down\",\"source\":\"dc\",\"pop\":1"));
  admin_.reset();  // before `fresh` goes
}

TEST_F(AdminTest, ThousandsOfGatewaysAreAggregatedThenPaged) {
  pb::Envelope reply;
  ASSERT_TRUE(admin_->OnPopSummary(2, Summary(2, 5000, /*lost=*/40), &reply).ok());
  HttpResponse ov = Get("/api/overview");
  EXPECT_THAT(ov.body, HasSubstr("\"gateways_truncated\":true"));
  EXPECT_THAT(ov.body, HasSubstr("\"total\":5000"));
  EXPECT_LT(ov.body.size(), 20000u);
  HttpResponse page = Get("/api/pops/2?state=lost&offset=10&limit=20");
  EXPECT_THAT(page.body, HasSubstr("\"gateways_matched\":40,\"offset\":10,\"limit\":20"));
  EXPECT_THAT(page.body, HasSubstr("{\"id\":200011,"));
  EXPECT_THAT(page.body, Not(HasSubstr("{\"id\":200031,")));
  EXPECT_EQ(Get("/api/pops/2?limit=999999").status, 200);  // clamped
  EXPECT_EQ(Get("/api/pops/9").status, 404);
}

TEST_F(AdminTest, ObjectsAndUsageComeFromTheCatalog) {
  Oid oid{1, 2, 100001, 7};
  Bytes enc = oid.Encode();
  pb::VersionInfo info;
  info.set_oid(std::string(enc.begin(), enc.end()));
  info.set_version(3);
  info.set_size_bytes(12345);
  info.set_subscriber("alice");
  info.set_name_sealed("x");
  ASSERT_TRUE(catalog_->ReportVersion(info).ok());
  HttpResponse o = Get("/api/objects/" + oid.Hex());
  ASSERT_EQ(o.status, 200) << o.body;
  EXPECT_THAT(o.body, HasSubstr("\"subscriber\":\"alice\",\"latest_version\":3,\"size_bytes\":12345"));
  EXPECT_THAT(o.body, HasSubstr("{\"role\":\"primary\",\"pop_id\":1"));
  EXPECT_THAT(o.body, HasSubstr("{\"role\":\"backup\",\"pop_id\":2"));
  EXPECT_EQ(Get("/api/objects/" + Oid{9, 9, 9, 9}.Hex()).status, 404);
  EXPECT_EQ(Get("/api/objects/zz").status, 400);
  HttpResponse u = Get("/api/subscribers");
  EXPECT_THAT(u.body, HasSubstr("{\"subscriber\":\"alice\",\"objects\":1,\"bytes\":12345"));
}

TEST_F(AdminTest, MonitorAnswersTimeRangesFromStoredSummaries) {
  for (int64_t t = 1000; t <= 4000; t += 1000) {
    pb::MonitorPopSummary s = Summary(1, 2);
    s.set_placement_queue(uint64_t(t / 1000));
    ASSERT_TRUE(catalog_->AddPopSummary(1, t, s).ok());
    ASSERT_TRUE(catalog_->AddPopSummary(2, t, Summary(2, 1)).ok());
  }
  HttpResponse r = Get("/api/monitor?pop=1&from=2000&to=3000");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("{\"pop\":1,\"t\":2000,"));
  EXPECT_THAT(r.body, HasSubstr("\"placement_queue\":3,"));
  EXPECT_THAT(r.body, Not(HasSubstr("\"t\":1000,")));
  EXPECT_THAT(r.body, Not(HasSubstr("\"t\":4000,")));
  EXPECT_THAT(r.body, Not(HasSubstr("{\"pop\":2,")));
  HttpResponse all = Get("/api/monitor?limit=3");
  ASSERT_EQ(all.status, 200);
  EXPECT_THAT(all.body, HasSubstr("{\"pop\":2,\"t\":1000,"));
  EXPECT_THAT(all.body, Not(HasSubstr("\"t\":3000,")));
}

TEST_F(AdminTest, JsonStringsAreEscaped) {
  pb::MonitorPopSummary s = Summary(1, 1);
  s.mutable_gateways(0)->set_subscriber("a\"b\\c</script>\n");
  pb::Envelope reply;
  ASSERT_TRUE(admin_->OnPopSummary(1, s, &reply).ok());
  EXPECT_THAT(Get("/api/pops/1").body, HasSubstr("\"subscriber\":\"a\\\"b\\\\c\\u003c/script>\\n\""));
}

TEST(AdminToken, CreatedOnceWithPrivateMode) {
  TempDir dir;
  std::string path = dir.path() + "/admin.token";
  auto t1 = DcAdmin::LoadOrCreateToken(path);
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  EXPECT_EQ(t1->size(), 64u);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto t2 = DcAdmin::LoadOrCreateToken(path);
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t1.value(), t2.value());
  std::ofstream(dir.path() + "/short") << "abc\n";
  EXPECT_FALSE(DcAdmin::LoadOrCreateToken(dir.path() + "/short").ok());
  std::ofstream(dir.path() + "/spaces") << "0123456789 abcdef0123\n";
  EXPECT_FALSE(DcAdmin::LoadOrCreateToken(dir.path() + "/spaces").ok());
}

}  // namespace
}  // namespace mistore
