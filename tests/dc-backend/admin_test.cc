// DcAdmin without sockets: requests go straight to Handle(); POP summaries
// straight to OnPopSummary(). The catalog is a real SQLite one in a temp dir.
#include "dc-backend/admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "shared/core/oid.h"

namespace mistore {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mistore_admin_test.XXXXXX";
    char* p = mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

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
  EXPECT_THAT(ev.body, HasSubstr("\"kind\":\"gateway_lost\",\"pop\":1,\"gateway\":100001"));
  EXPECT_THAT(ev.body, HasSubstr("\"kind\":\"pop_reporting\""));
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
  EXPECT_THAT(Get("/api/events").body, HasSubstr("\"kind\":\"gateway_returned\",\"pop\":1,\"gateway\":100001"));
  EXPECT_THAT(metrics_.Exposition(), HasSubstr("mistore_dc_gateways{state=\"connected\"} 8\n"));
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
