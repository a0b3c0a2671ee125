// MessageTypeName (shared/uvio/daemon_metrics.h) knows every body of the
// Envelope: the test reads the Envelope's oneof from mistore.proto (the
// lite runtime has no descriptors), builds an Envelope with each body field
// set (an empty length-delimited field on the wire) and checks the name is
// the field's own, never "other". A body added to the proto without a name
// fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shared/uvio/daemon_metrics.h"

#ifndef MISTORE_PROTO_FILE
#error "MISTORE_PROTO_FILE must name shared/proto/mistore.proto"
#endif

namespace mistore {
namespace {

// (field name, number) of every field inside `oneof body { ... }` of
// message Envelope.
std::vector<std::pair<std::string, int>> EnvelopeBodies() {
  std::ifstream f(MISTORE_PROTO_FILE);
  EXPECT_TRUE(f.good()) << "cannot read " << MISTORE_PROTO_FILE;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  size_t env = text.find("message Envelope {");
  EXPECT_NE(env, std::string::npos);
  size_t body = text.find("oneof body {", env);
  EXPECT_NE(body, std::string::npos);
  size_t end = text.find('}', body);
  std::string block = text.substr(body, end - body);
  std::vector<std::pair<std::string, int>> out;
  std::regex field(R"(^\s*[A-Za-z_][A-Za-z0-9_.]*\s+([a-z_][a-z0-9_]*)\s*=\s*(\d+)\s*;)");
  std::istringstream lines(block);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, field)) out.push_back({m[1], std::stoi(m[2])});
  }
  return out;
}

std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(char(v | 0x80));
    v >>= 7;
  }
  s.push_back(char(v));
  return s;
}

TEST(MessageTypeName, EveryEnvelopeBodyHasItsFieldName) {
  auto bodies = EnvelopeBodies();
  ASSERT_GT(bodies.size(), 40u) << "parsed too few Envelope bodies from " << MISTORE_PROTO_FILE;
  for (auto& [name, number] : bodies) {
    pb::Envelope env;
    // Field `number`, wire type 2 (length-delimited), length 0: an empty
    // message of that body type.
    std::string wire = Varint(uint64_t(number) << 3 | 2) + Varint(0);
    ASSERT_TRUE(env.ParseFromString(wire)) << name;
    ASSERT_EQ(int(env.body_case()), number) << name << " did not parse as body " << number;
    EXPECT_EQ(MessageTypeName(env), name)
        << "body field " << number << ": add it to MessageTypeName in shared/uvio/daemon_metrics.cc";
  }
}

TEST(MessageTypeName, NoBodyIsOther) {
  pb::Envelope env;
  EXPECT_EQ(MessageTypeName(env), "other");
  env.set_request_id(7);
  EXPECT_EQ(MessageTypeName(env), "other");
}

}  // namespace
}  // namespace mistore
