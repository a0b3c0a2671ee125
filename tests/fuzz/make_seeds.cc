// fuzz_make_seeds DIR: writes the seed corpora of the fuzz targets into
// DIR/<target>/ with the real encoders, so seeds follow the formats. Run it
// after a format change and commit the result (tests/fuzz/corpus/):
//   build/release/bin/fuzz_make_seeds tests/fuzz/corpus
// Each seed is small; the comments say which check each one reaches.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/crypto/keys.h"
#include "shared/erasure/chunk_codec.h"
#include "shared/erasure/fragment.h"
#include "shared/wire/envelope.h"
#include "shared/wire/frame.h"
#include "sync-client/fragment_tags.h"
#include "sync-client/manifest.h"

namespace {

using namespace mistore;

std::string g_dir;

void Write(const std::string& target, const std::string& name, const Bytes& b) {
  const std::string d = g_dir + "/" + target;
  mkdir(g_dir.c_str(), 0755);
  mkdir(d.c_str(), 0755);
  const std::string path = d + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  MS_ASSERT(f != nullptr);
  if (!b.empty()) MS_ASSERT(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  std::fclose(f);
}
Bytes Cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Bytes Str(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes Pattern(size_t n, uint8_t salt) {
  Bytes b(n);
  for (size_t i = 0; i < n; i++) b[i] = uint8_t(i * 131 + salt);
  return b;
}

// Version-2 fragments (what EncodeChunkToFragments writes) and version-1
// fragments (what gateways still hold), valid and damaged, so replays cover
// both parsers' paths.
void Fragments() {
  const Bytes id = Pattern(32, 1);
  auto frag = [&](size_t len, int k, int m, int index) {
    return EncodeChunkToFragments(id, Pattern(len, 2).data(), len, k, m).value()[size_t(index)];
  };
  auto frag_v1 = [&](size_t len, int k, int m, int index) {
    const Bytes v2 = frag(len, k, m, index);
    FragmentHeader h = ParseFragment(v2.data(), v2.size()).value().first;
    h.version = kFragmentFormatV1;
    return EncodeFragment(h, v2.data() + kFragmentHeaderSizeV2, v2.size() - kFragmentHeaderSizeV2);
  };
  const Bytes mode0{0}, mode3{3}, mode2{2};
  for (int version : {1, 2}) {
    const std::string v = version == 1 ? "v1_" : "v2_";
    auto make = [&](size_t len, int k, int m, int index) {
      return version == 1 ? frag_v1(len, k, m, index) : frag(len, k, m, index);
    };
    const size_t hlen = version == 1 ? kFragmentHeaderSizeV1 : kFragmentHeaderSizeV2;
    const Bytes small = make(100, 2, 1, 0);
    Write("fragment", v + "valid_k2_m1_data", Cat(mode0, small));
    Write("fragment", v + "valid_k8_m4_parity", Cat(mode0, make(3000, 8, 4, 9)));
    Write("fragment", v + "valid_empty_chunk", Cat(mode0, make(0, 1, 1, 0)));
    Bytes t = small;
    t.pop_back();
    Write("fragment", v + "truncated_payload", Cat(mode0, t));
    t = small;
    t.push_back(0);
    Write("fragment", v + "trailing_byte", Cat(mode0, t));
    Write("fragment", v + "header_only_50", Cat(mode0, Bytes(small.begin(), small.begin() + 50)));
    Write("fragment", v + "header_short_by_one",
          Cat(mode0, Bytes(small.begin(), small.begin() + long(hlen) - 1)));
    t = small;
    t[0] = 'X';
    Write("fragment", v + "bad_magic", Cat(mode0, t));
    t = small;
    t[4] = 3;  // format version 3: unknown
    Write("fragment", v + "unknown_version", Cat(mode2, t));
    t = small;
    t[6] = uint8_t(version == 1 ? kFragmentHeaderSizeV2 : kFragmentHeaderSizeV1);  // other version's length
    Write("fragment", v + "bad_header_length", Cat(mode3, t));
    t = small;
    t[41] = 0;  // k = 0; mode 3 fixes both checks: reaches the field checks
    Write("fragment", v + "fixup_k_zero", Cat(mode3, t));
    t = small;
    t[56] = 9;  // payload length disagrees with the chunk length
    Write("fragment", v + "fixup_bad_payload_len", Cat(mode3, t));
    t = small;
    t[61] = 1;  // payload length 2^40: oversized
    Write("fragment", v + "fixup_oversized", Cat(mode3, t));
    t = small;
    t[hlen + 10] ^= 1;  // payload bit flip: check mismatch
    Write("fragment", v + "payload_bitflip", Cat(mode0, t));
    t = small;
    t[hlen + 10] ^= 1;  // the same, check recomputed (a forger's fragment)
    Write("fragment", v + "payload_forged", Cat(mode3, t));
  }
}

Bytes Frame(const pb::Envelope& env) { return EncodeEnvelopeFrame(env); }

void Frames() {
  pb::Envelope put;
  put.set_request_id(7);
  put.mutable_put_chunk()->set_subscriber("alice");
  put.mutable_put_chunk()->set_chunk_id(std::string(32, 'i'));
  put.mutable_put_chunk()->set_data(std::string(100, 'd'));
  pb::Envelope get;
  get.set_request_id(8);
  get.mutable_get_version()->set_subscriber("alice");
  get.mutable_get_version()->set_name_key(std::string(32, 'n'));
  get.mutable_get_version()->set_version(3);
  const pb::Envelope err = ErrorResponse(9, Corrupt("chunk does not match its id"));
  const Bytes stream = Cat(Cat(Frame(put), Frame(get)), Frame(err));
  // [limit byte][piece byte][stream]; limit 64 << 17 = 8 MiB.
  Write("frame_envelope", "three_frames_whole", Cat(Bytes{17, 0}, stream));
  Write("frame_envelope", "three_frames_pieces_of_7", Cat(Bytes{17, 7}, stream));
  Bytes over;
  EncodeFrame(Pattern(2000, 3).data(), 2000, &over);
  Write("frame_envelope", "oversized_for_1KiB_limit", Cat(Bytes{4, 0}, over));
  Bytes cut = Frame(put);
  cut.resize(cut.size() - 10);
  Write("frame_envelope", "truncated_frame", Cat(Bytes{17, 3}, cut));
  Bytes junk;
  EncodeFrame(Pattern(40, 4).data(), 40, &junk);
  Write("frame_envelope", "undecodable_payload", Cat(Bytes{17, 0}, junk));
  pb::Envelope empty;
  empty.set_request_id(1);
  Write("frame_envelope", "no_known_body", Cat(Bytes{17, 0}, Frame(empty)));
  Bytes zero;
  EncodeFrame(nullptr, 0, &zero);
  Write("frame_envelope", "empty_frame", Cat(Bytes{0, 1}, zero));
}

void MasterKeys() {
  MS_ASSERT(crypto::CryptoInit().ok());
  const crypto::SecretBytes master = crypto::GenerateMasterKey();
  auto wrap = [&](const char* pass) {
    return crypto::WrapMasterKey(master, pass, crypto::kPwhashOpsMin, crypto::kPwhashMemMin).value();
  };
  const Bytes good = wrap("fuzz-passphrase");
  Write("master_key", "valid_min_limits", good);
  Write("master_key", "other_passphrase", wrap("not-the-fuzz-passphrase"));
  Bytes t = good;
  t[0] = 'X';
  Write("master_key", "bad_magic", t);
  t = good;
  t[4] = 9;
  Write("master_key", "unknown_version", t);
  t = good;
  t[5] = 2;
  Write("master_key", "unknown_algorithm", t);
  Write("master_key", "truncated", Bytes(good.begin(), good.begin() + 60));
  t = good;
  PutLe64(t.data() + 14, uint64_t{1} << 40);  // memlimit 1 TiB: rejected before Argon2id
  Write("master_key", "memlimit_out_of_range", t);
  t = good;
  PutLe64(t.data() + 6, 0);  // opslimit 0
  Write("master_key", "opslimit_zero", t);
  t = good;
  t[100] ^= 1;  // tag damaged
  Write("master_key", "damaged_tag", t);
}

void Configs() {
  const Bytes file{0}, args{1};
  Write("config", "file_all_knobs",
        Cat(file, Str("# sample\nlisten = 0.0.0.0:7000\nframe_bytes_max = 1048576\n\n"
                      "fsync = false\n   data_dir =  /var/lib/mistore  \n")));
  Write("config", "file_bad_int", Cat(file, Str("frame_bytes_max = 12x\n")));
  Write("config", "file_bad_bool", Cat(file, Str("fsync = yes\n")));
  Write("config", "file_unknown_knob", Cat(file, Str("listen = a\nsurprise = 1\n")));
  Write("config", "file_no_equals", Cat(file, Str("listen 127.0.0.1:1\n")));
  Write("config", "file_int_overflow", Cat(file, Str("frame_bytes_max = 99999999999999999999\n")));
  Write("config", "file_crlf_and_empty_value", Cat(file, Str("data_dir =\r\nfsync = true\r\n")));
  const std::string a = std::string("--listen=1.2.3.4:5") + '\0' + "--fsync" + '\0' + "positional" +
                        '\0' + "--frame-bytes-max" + '\0' + "4096";
  Write("config", "args_mixed", Cat(args, Str(a)));
  Write("config", "args_missing_value", Cat(args, Str("--data-dir")));
  Write("config", "args_unknown", Cat(args, Str(std::string("--nope=1") + '\0' + "x")));
}

}  // namespace

// pop_request: [selector][Envelope] frames (fuzz_pop_request.cc). Every
// body type of Envelope (found by field number, so new types are covered
// without editing this) as a request from a gateway, a POP and the DC, and a
// gateway's put + commit with the DC's answers.
Bytes Sel(uint8_t sel, const pb::Envelope& env) {
  const std::string s = env.SerializeAsString();
  Bytes payload{sel};
  payload.insert(payload.end(), s.begin(), s.end());
  Bytes out;
  EncodeFrame(payload.data(), payload.size(), &out);
  return out;
}

// One Envelope per body type, each with an empty message of that type. The
// generated code is lite (no descriptors), so the types are found by field
// number: an empty length-delimited field N that parses into a body is one.
std::vector<pb::Envelope> EveryBody() {
  std::vector<pb::Envelope> out;
  for (uint32_t n = 5; n < 2048; n++) {
    std::string wire;
    for (uint64_t tag = (uint64_t(n) << 3) | 2; ; tag >>= 7) {
      if (tag < 0x80) {
        wire.push_back(char(tag));
        break;
      }
      wire.push_back(char((tag & 0x7f) | 0x80));
    }
    wire.push_back('\0');  // length 0
    pb::Envelope env;
    if (env.ParseFromString(wire) && env.body_case() != pb::Envelope::BODY_NOT_SET)
      out.push_back(env);
  }
  MS_ASSERT(out.size() >= 40);
  return out;
}

void PopRequests() {
  const std::vector<pb::Envelope> bodies = EveryBody();
  for (uint8_t sel : {uint8_t(0), uint8_t(1), uint8_t(2)}) {
    Bytes stream;
    for (const pb::Envelope& env : bodies) stream = Cat(stream, Sel(sel, env));
    const char* who[] = {"gateway", "pop", "dc_or_replies"};
    Write("pop_request", std::string("every_body_from_") + who[sel], stream);
  }
  pb::Envelope put;
  put.mutable_put_chunk()->set_subscriber("alice");
  put.mutable_put_chunk()->set_chunk_id(std::string(32, 'c'));
  put.mutable_put_chunk()->set_data(std::string(100, 'd'));
  pb::Envelope commit;
  auto* pc = commit.mutable_put_commit();
  pc->set_subscriber("alice");
  pc->set_name_key(std::string(32, 'n'));
  pc->set_name_sealed("sealed-name");
  pc->set_size_bytes(100);
  pc->set_manifest_sealed("sealed-manifest");
  pc->add_chunk_ids(std::string(32, 'c'));
  pc->set_gateway_id(11);
  pc->set_write_id(std::string(16, 'w'));
  const pb::Envelope not_found = ErrorResponse(0, NotFound("no such name"));
  pb::Envelope empty;
  empty.mutable_empty();
  pb::Envelope tick;
  Bytes flow = Cat(Cat(Sel(0, put), Sel(0, commit)), Sel(2, not_found));
  for (int i = 0; i < 6; i++) flow = Cat(flow, Sel(2, empty));
  flow = Cat(flow, Sel(3 | (4 << 2), tick));
  Write("pop_request", "put_and_commit_dc_answers", flow);
  Write("pop_request", "put_and_commit_calls_fail",
        Cat(Cat(Cat(Sel(0, put), Sel(0, commit)), Sel(2 | 4, empty)), Sel(3, tick)));
  pb::Envelope other = put;
  other.mutable_put_chunk()->set_subscriber("bob");
  Write("pop_request", "put_for_another_subscriber", Sel(0, other));
}

// agent_request: the same frames (fuzz_agent_request.cc). Every body type
// from the POP, and a real fragment stored, fetched (now and as a
// background repair read), listed and deleted.
void AgentRequests() {
  Bytes every;
  for (const pb::Envelope& env : EveryBody()) every = Cat(every, Sel(0, env));
  Write("agent_request", "every_body_from_pop", every);
  const Bytes id = Pattern(32, 1);
  const Bytes frag = EncodeChunkToFragments(id, Pattern(300, 2).data(), 300, 2, 1).value()[1];
  pb::Envelope store;
  store.mutable_store_fragment()->set_fragment(std::string(frag.begin(), frag.end()));
  pb::Envelope fetch;
  fetch.mutable_fetch_fragment()->set_chunk_id(std::string(id.begin(), id.end()));
  fetch.mutable_fetch_fragment()->set_index(1);
  pb::Envelope repair = fetch;
  repair.mutable_fetch_fragment()->set_background(true);
  pb::Envelope inv;
  inv.mutable_get_inventory();
  pb::Envelope del;
  auto* ref = del.mutable_delete_fragments()->add_fragments();
  ref->set_chunk_id(std::string(id.begin(), id.end()));
  ref->set_index(1);
  pb::Envelope empty;
  empty.mutable_empty();
  pb::Envelope tick;
  Bytes flow = Cat(Cat(Cat(Sel(0, store), Sel(0, fetch)), Sel(0, repair)), Sel(3, tick));
  flow = Cat(Cat(Cat(Cat(flow, Sel(0, inv)), Sel(2, empty)), Sel(2, empty)), Sel(0, del));
  flow = Cat(Cat(flow, Sel(0, fetch)), Sel(3 | (8 << 2), tick));
  Write("agent_request", "store_fetch_list_delete", flow);
  Write("agent_request", "store_on_old_generation", Sel(0 | 4, store));
}

// Sealed-manifest plaintexts (sync-client/manifest.h): both formats, a
// tagged chunk (real tags of a real sealed-size buffer) and an untagged one,
// a tombstone, and one seed per inconsistency the decoder rejects.
void Manifests() {
  auto put = [](const std::string& name, const pb::Manifest& m) {
    const std::string s = m.SerializeAsString();
    Write("manifest", name, Bytes(s.begin(), s.end()));
  };
  const Bytes sealed = Pattern(5000, 3);
  const Bytes id = Pattern(32, 4);
  crypto::SecretBytes root(Pattern(32, 5).data(), 32);
  const Bytes tags = ComputeFragmentTags(root, id, sealed.data(), sealed.size(), 4, 2).value();
  pb::Manifest v2;
  v2.set_format(kManifestFormatV2);
  v2.set_name("dir/file.bin");
  v2.set_size_bytes(4960 + 777);
  v2.set_mtime_s(1700000000);
  v2.set_mode(0644);
  v2.set_put_time_ms(1700000000123);
  v2.set_fragment_k(4);
  v2.set_fragment_m(2);
  auto* c = v2.add_chunks();
  c->set_id(std::string(id.begin(), id.end()));
  c->set_plain_len(4960);
  c->set_seal_nonce(std::string(sealed.begin(), sealed.begin() + 24));
  c->set_fragment_tags(std::string(tags.begin(), tags.end()));
  c = v2.add_chunks();
  const Bytes id2 = Pattern(32, 6);
  c->set_id(std::string(id2.begin(), id2.end()));
  c->set_plain_len(777);
  MS_ASSERT(ValidateManifest(v2).ok());
  put("v2_tagged_and_untagged", v2);
  pb::Manifest v1 = v2;
  v1.set_format(kManifestFormatV1);
  v1.clear_fragment_k();
  v1.clear_fragment_m();
  v1.mutable_chunks(0)->clear_seal_nonce();
  v1.mutable_chunks(0)->clear_fragment_tags();
  MS_ASSERT(ValidateManifest(v1).ok());
  put("v1_two_chunks", v1);
  pb::Manifest tomb;
  tomb.set_format(kManifestFormatV2);
  tomb.set_name("gone");
  tomb.set_deleted(true);
  put("v2_tombstone", tomb);
  pb::Manifest v3 = v2;  // issue 4: every chunk carries its seal key
  v3.set_format(kManifestFormatV3);
  for (int i = 0; i < v3.chunks_size(); i++) {
    const Bytes k = Pattern(32, uint8_t(20 + i));
    v3.mutable_chunks(i)->set_seal_key(std::string(k.begin(), k.end()));
  }
  MS_ASSERT(ValidateManifest(v3).ok());
  put("v3_chunk_keys", v3);
  pb::Manifest bad = v2;
  bad.mutable_chunks(0)->mutable_fragment_tags()->append(16, 'x');
  put("bad_one_tag_too_many", bad);
  bad = v2;
  bad.set_fragment_m(3);
  put("bad_code_disagrees_with_tags", bad);
  bad = v2;
  bad.mutable_chunks(0)->clear_seal_nonce();
  put("bad_tags_without_nonce", bad);
  bad = v2;
  bad.set_format(kManifestFormatV1);
  put("bad_v1_with_tags", bad);
  bad = v2;
  bad.set_size_bytes(1);
  put("bad_sizes_disagree", bad);
  Write("manifest", "bad_not_protobuf", Bytes{0xff, 0xff, 0xff, 0x0f});
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  Fragments();
  Frames();
  MasterKeys();
  Configs();
  PopRequests();
  AgentRequests();
  Manifests();
  std::printf("seeds written under %s\n", g_dir.c_str());
  return 0;
}
