// Tests of the sealed manifest's decoder (sync-client/manifest.h) and the
// fragment tags (sync-client/fragment_tags.h): known-answer files written by
// testdata/make_manifest_kat.py from the format description (a format change
// fails here), a tag known answer from an independent Poly1305, the client's
// fragment payloads equal to the POP's encoder's, and the check that names a
// forged fragment whose CRC32C the forger recomputed.
#include "sync-client/manifest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "shared/core/bytes.h"
#include "shared/crypto/aead.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "shared/erasure/reed_solomon.h"
#include "sync-client/fragment_tags.h"

namespace mistore {
namespace {

Bytes ReadTestData(const std::string& name) {
  const std::string path = std::string(MISTORE_CLIENT_TESTDATA) + "/" + name;
  FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  Bytes out;
  if (f == nullptr) return out;
  uint8_t buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  return out;
}

Bytes Range(uint8_t from, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(from + i);
  return b;
}
std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }
Bytes Pattern(size_t n, uint64_t seed) {
  Bytes b(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b[i] = uint8_t(x);
  }
  return b;
}

TEST(ManifestTest, KnownAnswerFiles) {
  for (uint32_t format : {1u, 2u}) {
    SCOPED_TRACE("format " + std::to_string(format));
    const Bytes file =
        ReadTestData("manifest_v" + std::to_string(format) + "_kat.bin");
    auto m = DecodeManifest(file.data(), file.size());
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->format(), format);
    EXPECT_EQ(m->name(), "docs/report.txt");
    EXPECT_EQ(m->size_bytes(), 300000u);
    EXPECT_EQ(m->mtime_s(), 1700000000);
    EXPECT_EQ(m->mode(), 0644u);
    EXPECT_EQ(m->put_time_ms(), 1700000000123);
    EXPECT_FALSE(m->deleted());
    ASSERT_EQ(m->chunks_size(), 2);
    EXPECT_EQ(m->chunks(0).id(), Str(Range(0, 32)));
    EXPECT_EQ(m->chunks(0).plain_len(), 100000u);
    EXPECT_EQ(m->chunks(1).id(), Str(Range(0x80, 32)));
    EXPECT_EQ(m->chunks(1).plain_len(), 200000u);
    EXPECT_FALSE(ChunkHasTags(*m, 1));
    if (format == 1) {
      EXPECT_FALSE(ChunkHasTags(*m, 0));
      EXPECT_EQ(m->fragment_k(), 0u);
    } else {
      EXPECT_EQ(m->fragment_k(), 4u);
      EXPECT_EQ(m->fragment_m(), 2u);
      ASSERT_TRUE(ChunkHasTags(*m, 0));
      EXPECT_EQ(m->chunks(0).seal_nonce(), Str(Range(0xA0, 24)));
      Bytes tags(96);
      for (size_t i = 0; i < tags.size(); i++) tags[i] = uint8_t(i * 7 + 3);
      EXPECT_EQ(m->chunks(0).fragment_tags(), Str(tags));
    }
    // The encoder writes the same bytes: a field renumbered or re-typed
    // changes them.
    EXPECT_EQ(m->SerializeAsString(), Str(file));
  }
}

TEST(ManifestTest, RejectsInconsistentManifests) {
  const Bytes file = ReadTestData("manifest_v2_kat.bin");
  auto good = DecodeManifest(file.data(), file.size());
  ASSERT_TRUE(good.ok());
  auto expect_bad = [](const pb::Manifest& m, const std::string& what) {
    Status st = ValidateManifest(m);
    EXPECT_EQ(st.code(), Code::kCorrupt) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
    std::string bytes = m.SerializeAsString();
    EXPECT_FALSE(DecodeManifest(reinterpret_cast<const uint8_t*>(bytes.data()),
                                bytes.size())
                     .ok());
  };
  {
    pb::Manifest m = *good;  // one tag too many (k + m = 6, 7 given)
    m.mutable_chunks(0)->mutable_fragment_tags()->append(16, 'x');
    expect_bad(m, "not 96");
  }
  {
    pb::Manifest m = *good;  // one tag too few
    m.mutable_chunks(0)->mutable_fragment_tags()->resize(80);
    expect_bad(m, "not 96");
  }
  {
    pb::Manifest m = *good;  // tags for another code than recorded
    m.set_fragment_m(3);
    expect_bad(m, "not 112");
  }
  {
    pb::Manifest m = *good;
    m.mutable_chunks(0)->set_seal_nonce("short");
    expect_bad(m, "seal nonce of 5 bytes");
  }
  {
    pb::Manifest m = *good;
    m.mutable_chunks(0)->clear_seal_nonce();
    expect_bad(m, "without the other");
  }
  {
    pb::Manifest m = *good;
    m.clear_fragment_k();
    expect_bad(m, "invalid erasure code");
    m.clear_fragment_m();
    expect_bad(m, "no erasure code");
  }
  {
    pb::Manifest m = *good;
    m.set_fragment_k(33);
    expect_bad(m, "invalid erasure code");
  }
  {
    pb::Manifest m = *good;
    m.set_format(1);
    expect_bad(m, "format 1 carries");
  }
  {
    pb::Manifest m = *good;
    m.set_format(4);
    expect_bad(m, "format 4 is unknown");
  }
  {
    // Format 3 (issue 4): every chunk carries a 32-byte seal key.
    pb::Manifest m = *good;
    m.set_format(3);
    expect_bad(m, "seal key of 0 bytes (format 3: 32)");
    for (int i = 0; i < m.chunks_size(); i++)
      m.mutable_chunks(i)->set_seal_key(std::string(32, char('a' + i)));
    EXPECT_TRUE(ValidateManifest(m).ok());
    EXPECT_TRUE(ManifestHasChunkKeys(m));
    m.mutable_chunks(1)->set_seal_key(std::string(31, 'z'));
    expect_bad(m, "seal key of 31 bytes");
  }
  {
    pb::Manifest m = *good;  // a format-2 manifest with a chunk key
    m.mutable_chunks(0)->set_seal_key(std::string(32, 'k'));
    expect_bad(m, "format 2 carries a seal key");
    EXPECT_FALSE(ManifestHasChunkKeys(*good));
  }
  {
    pb::Manifest m = *good;
    m.mutable_chunks(1)->set_id("short");
    expect_bad(m, "id of 5 bytes");
  }
  {
    pb::Manifest m = *good;
    m.set_size_bytes(300001);
    expect_bad(m, "add up to 300000");
  }
  const uint8_t junk[] = {0xff, 0xff, 0xff};
  EXPECT_EQ(DecodeManifest(junk, sizeof junk).status().code(), Code::kCorrupt);
}

// From make_manifest_kat.py (BLAKE2b from hashlib, Poly1305 written from
// RFC 8439 and checked against its test vector).
TEST(FragmentTagsTest, KnownAnswer) {
  const Bytes root_b = Range(0x40, 32);
  crypto::SecretBytes root(root_b.data(), root_b.size());
  Bytes payload(1000);
  for (size_t i = 0; i < payload.size(); i++) payload[i] = uint8_t(i * 131 + 2);
  const Bytes nonce = Range(0xA0, 24);
  Bytes tag = FragmentTag(root, Range(0, 32), nonce.data(), 5, 4, 2,
                          payload.data(), payload.size());
  EXPECT_EQ(ToHex(tag), "618e4afdfa784495c09d6117d217d67f");
  // Every input of the one-time key matters.
  EXPECT_NE(FragmentTag(root, Range(0, 32), nonce.data(), 4, 4, 2,
                        payload.data(), payload.size()),
            tag);
  EXPECT_NE(FragmentTag(root, Range(0, 32), nonce.data(), 5, 5, 2,
                        payload.data(), payload.size()),
            tag);
  EXPECT_NE(FragmentTag(root, Range(0, 32), nonce.data(), 5, 4, 3,
                        payload.data(), payload.size()),
            tag);
  EXPECT_NE(FragmentTag(root, Range(1, 32), nonce.data(), 5, 4, 2,
                        payload.data(), payload.size()),
            tag);
  const Bytes nonce2 = Range(0xA1, 24);
  EXPECT_NE(FragmentTag(root, Range(0, 32), nonce2.data(), 5, 4, 2,
                        payload.data(), payload.size()),
            tag);
}

// The client's tags are of exactly the payloads the POP's encoder makes
// (EncodeChunkToFragments), for tiny, unaligned and large chunks.
TEST(FragmentTagsTest, TagsMatchThePopsFragments) {
  crypto::SecretBytes root = crypto::SecretBytes::Random(32);
  const Bytes id = Range(9, 32);
  for (auto [k, m] : {std::pair{4, 2}, {8, 4}, {3, 1}}) {
    for (size_t len : {size_t(24), size_t(25), size_t(1000),
                       size_t(4096 * 8 + 40), size_t(300001)}) {
      SCOPED_TRACE(std::to_string(k) + "+" + std::to_string(m) + " len " +
                   std::to_string(len));
      const Bytes sealed = Pattern(len, len + k);
      auto tags =
          ComputeFragmentTags(root, id, sealed.data(), sealed.size(), k, m);
      ASSERT_TRUE(tags.ok()) << tags.status().ToString();
      ASSERT_EQ(tags->size(), size_t(k + m) * 16);
      auto blobs =
          EncodeChunkToFragments(id, sealed.data(), sealed.size(), k, m);
      ASSERT_TRUE(blobs.ok());
      for (int i = 0; i < k + m; i++) {
        const Bytes& b = blobs.value()[size_t(i)];
        auto p = ParseFragment(b.data(), b.size());
        ASSERT_TRUE(p.ok());
        EXPECT_TRUE(FragmentTagMatches(root, id, sealed.data(), *tags, i, k, m,
                                       p->second.data(), p->second.size()))
            << "fragment " << i;
        // Another index's tag (unless the payloads are equal: zero padding
        // fragments of tiny chunks are).
        const int j = (i + 1) % (k + m);
        const Bytes& bj = blobs.value()[size_t(j)];
        const bool same =
            std::equal(p->second.begin(), p->second.end(),
                       bj.begin() + long(bj.size() - p->second.size()));
        EXPECT_EQ(FragmentTagMatches(root, id, sealed.data(), *tags, j, k, m,
                                     p->second.data(), p->second.size()),
                  same);
      }
    }
  }
  EXPECT_FALSE(ComputeFragmentTags(root, id, nullptr, 10, 4, 2).ok())
      << "shorter than a nonce";
  EXPECT_FALSE(
      ComputeFragmentTags(root, Range(0, 31), Range(0, 64).data(), 64, 4, 2)
          .ok());
  EXPECT_FALSE(
      ComputeFragmentTags(root, id, Range(0, 64).data(), 64, 0, 2).ok());
}

struct Forgery {
  crypto::SecretBytes root = crypto::SecretBytes::Random(32);
  Bytes id = Range(3, 32);
  Bytes sealed = Pattern(100003, 7);
  int k = 4, m = 2;
  Bytes tags;
  std::vector<Bytes> blobs;
  Forgery() {
    tags = ComputeFragmentTags(root, id, sealed.data(), sealed.size(), k, m)
               .value();
    blobs =
        EncodeChunkToFragments(id, sealed.data(), sealed.size(), k, m).value();
  }
  // A malicious gateway's fragment: payload changed, CRC32C recomputed.
  Bytes Forge(int i) const {
    Bytes b = blobs[size_t(i)];
    auto h = ParseFragmentHeader(b.data(), b.size()).value();
    b[h.header_len() + 17] ^= 0x5a;
    FinishFragmentInPlace(h, b.data(), b.size() - h.header_len());
    EXPECT_TRUE(ParseFragment(b.data(), b.size()).ok())
        << "the forgery passes its CRC32C";
    return b;
  }
  pb::ChunkFragments Answer(const std::map<int, Bytes>& replace,
                            const std::set<int>& drop = {}) const {
    pb::ChunkFragments cf;
    cf.set_pop_id(7);
    for (int i = 0; i < k + m; i++) {
      if (drop.count(i)) continue;
      auto* f = cf.add_fragments();
      f->set_index(uint32_t(i));
      f->set_gateway_id(uint32_t(100 + i));
      auto r = replace.find(i);
      const Bytes& b = r == replace.end() ? blobs[size_t(i)] : r->second;
      f->set_fragment(Str(b));
    }
    return cf;
  }
};

TEST(FragmentTagsTest, CheckNamesTheForgedFragmentAndDecodesFromGoodOnes) {
  Forgery f;
  for (int forged : {0, 3, 5}) {
    SCOPED_TRACE("forged " + std::to_string(forged));
    auto r = CheckChunkFragments(f.root, f.id, f.sealed.data(), f.tags, f.k,
                                 f.m, f.sealed.size(),
                                 f.Answer({{forged, f.Forge(forged)}}));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->sealed, f.sealed);
    EXPECT_EQ(r->good, 5u);
    ASSERT_EQ(r->bad.size(), 1u);
    EXPECT_EQ(r->bad[0].index, uint32_t(forged));
    EXPECT_EQ(r->bad[0].gateway_id, uint32_t(100 + forged));
    EXPECT_NE(r->bad[0].why.find("CRC32C consistent"), std::string::npos)
        << r->bad[0].why;
  }
  // Two forged and one missing out of 6 (k = 4): only 3 good, named anyway.
  std::vector<NamedFragment> bad;
  auto r = CheckChunkFragments(
      f.root, f.id, f.sealed.data(), f.tags, f.k, f.m, f.sealed.size(),
      f.Answer({{1, f.Forge(1)}, {4, f.Forge(4)}}, {2}), &bad);
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].index, 1u);
  EXPECT_EQ(bad[1].index, 4u);
  // A fragment of another index served under this one, and garbage.
  auto r2 = CheckChunkFragments(
      f.root, f.id, f.sealed.data(), f.tags, f.k, f.m, f.sealed.size(),
      f.Answer({{2, f.blobs[3]}, {5, Bytes{1, 2, 3}}}));
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->sealed, f.sealed);
  ASSERT_EQ(r2->bad.size(), 2u);
  EXPECT_EQ(r2->bad[0].index, 2u);
  EXPECT_EQ(r2->bad[1].index, 5u);
  // Wrong tags (another key): everything is named, nothing decodes.
  crypto::SecretBytes other = crypto::SecretBytes::Random(32);
  auto r3 = CheckChunkFragments(other, f.id, f.sealed.data(), f.tags, f.k, f.m,
                                f.sealed.size(), f.Answer({}));
  EXPECT_EQ(r3.status().code(), Code::kCorrupt);
  // Too many entries: only 2 (k + m) are looked at.
  pb::ChunkFragments many = f.Answer({});
  for (int i = 0; i < 40; i++) *many.add_fragments() = many.fragments(0);
  auto r4 = CheckChunkFragments(f.root, f.id, f.sealed.data(), f.tags, f.k, f.m,
                                f.sealed.size(), many);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->good, 12u);
}

}  // namespace
}  // namespace mistore
