#include "shared/wire/frame.h"

#include <gtest/gtest.h>

#include <random>

#include "shared/wire/envelope.h"

namespace mistore {
namespace {

Bytes Frame(const Bytes& payload) {
  Bytes out;
  EncodeFrame(payload.data(), payload.size(), &out);
  return out;
}

TEST(FrameTest, HeaderIsLittleEndianLength) {
  Bytes f = Frame(Bytes(0x0102, 7));
  ASSERT_EQ(f.size(), 4u + 0x0102);
  EXPECT_EQ(f[0], 0x02);
  EXPECT_EQ(f[1], 0x01);
  EXPECT_EQ(f[2], 0x00);
  EXPECT_EQ(f[3], 0x00);
}

// Known answer of a whole Envelope frame (issue 10: every wire format
// byte-level, catches a big-endian host): the frame's u32 LE length, then
// protobuf's own little-endian encodings, a varint (request_id 0x0102 ->
// 82 02) and, inside a message, a double (fixed64 LE: 1.5 ->
// 00 00 00 00 00 00 f8 3f).
TEST(FrameTest, EnvelopeFrameKnownBytes) {
  pb::Envelope env;
  env.set_request_id(0x0102);
  env.mutable_hello()->set_role(pb::ROLE_GATEWAY);
  env.mutable_hello()->set_node_id(1003);
  const Bytes want = {0x0a, 0x00, 0x00, 0x00,         // frame length 10, LE
                      0x08, 0x82, 0x02,               // request_id = 0x0102
                      0x52, 0x05,                     // hello (field 10), 5 bytes
                      0x08, 0x02, 0x10, 0xeb, 0x07};  // role 2, node_id 1003
  EXPECT_EQ(ToHex(EncodeEnvelopeFrame(env)), ToHex(want));

  pb::MonitorPopSummary s;
  s.set_request_seconds_total(1.5);  // field 17, wire type 1: tag 89 01
  const std::string got = s.SerializeAsString();
  EXPECT_EQ(ToHex(got), "8901000000000000f83f");
}

TEST(FrameTest, RoundTripsAcrossArbitrarySplits) {
  std::mt19937 rng(42);
  Bytes stream;
  std::vector<Bytes> payloads;
  for (int i = 0; i < 50; i++) {
    Bytes p(rng() % 3000);
    for (auto& b : p) b = uint8_t(rng());
    payloads.push_back(p);
    Bytes f = Frame(p);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameDecoder dec(4096);
  std::vector<Bytes> got;
  size_t at = 0;
  while (at < stream.size()) {
    size_t n = std::min<size_t>(stream.size() - at, 1 + rng() % 700);
    ASSERT_TRUE(dec.Feed(stream.data() + at, n).ok());
    at += n;
    Bytes out;
    while (dec.Next(&out)) got.push_back(out);
  }
  EXPECT_EQ(got, payloads);
  EXPECT_EQ(dec.buffered_bytes(), 0u);
}

TEST(FrameTest, EmptyPayloadIsAFrame) {
  FrameDecoder dec;
  Bytes f = Frame({});
  ASSERT_TRUE(dec.Feed(f.data(), f.size()).ok());
  Bytes out{1};
  ASSERT_TRUE(dec.Next(&out));
  EXPECT_TRUE(out.empty());
}

TEST(FrameTest, TruncatedFrameYieldsNothingUntilComplete) {
  Bytes f = Frame(Bytes(100, 9));
  for (size_t cut = 0; cut < f.size(); cut++) {
    FrameDecoder dec;
    ASSERT_TRUE(dec.Feed(f.data(), cut).ok());
    Bytes out;
    EXPECT_FALSE(dec.Next(&out)) << "cut=" << cut;
    EXPECT_EQ(dec.buffered_bytes(), cut);
  }
}

TEST(FrameTest, OversizedFrameIsRejectedBeforeBuffering) {
  FrameDecoder dec(1024);
  uint8_t hdr[4];
  PutLe32(hdr, 1025);
  Status st = dec.Feed(hdr, 4);
  EXPECT_EQ(st.code(), Code::kProtocol);
  EXPECT_NE(st.message().find("exceeds limit"), std::string::npos);
  EXPECT_EQ(dec.buffered_bytes(), 0u);
  // Poisoned: later bytes are refused too.
  EXPECT_FALSE(dec.Feed(hdr, 1).ok());
}

TEST(FrameTest, ExactlyAtLimitIsAccepted) {
  FrameDecoder dec(1024);
  Bytes f = Frame(Bytes(1024, 1));
  ASSERT_TRUE(dec.Feed(f.data(), f.size()).ok());
  Bytes out;
  ASSERT_TRUE(dec.Next(&out));
  EXPECT_EQ(out.size(), 1024u);
}

TEST(EnvelopeTest, GarbageIsAProtocolError) {
  pb::Envelope env;
  Bytes junk = {0xff, 0xff, 0xff, 0xff, 0x0f};
  EXPECT_EQ(DecodeEnvelope(junk, &env).code(), Code::kProtocol);
  // Parses but carries no known body (unknown field 999).
  Bytes unknown = {0xba, 0x3e, 0x00};
  pb::Envelope env2;
  EXPECT_EQ(DecodeEnvelope(unknown, &env2).code(), Code::kProtocol);
}

TEST(EnvelopeTest, ErrorResponseCarriesStatus) {
  pb::Envelope e = ErrorResponse(7, NotFound("no such object"));
  Bytes frame = EncodeEnvelopeFrame(e);
  FrameDecoder dec;
  ASSERT_TRUE(dec.Feed(frame.data(), frame.size()).ok());
  Bytes payload;
  ASSERT_TRUE(dec.Next(&payload));
  pb::Envelope back;
  ASSERT_TRUE(DecodeEnvelope(payload, &back).ok());
  EXPECT_EQ(back.request_id(), 7u);
  EXPECT_TRUE(back.is_response());
  Status st = ResponseStatus(back);
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "no such object");
}

}  // namespace
}  // namespace mistore
