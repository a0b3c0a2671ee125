// Fuzz target: the frame decoder and envelope decoding (shared/wire).
//
// Input: byte 0 picks the frame size limit (64 << (b % 18): 64 B .. 8 MiB,
// the production default), byte 1 the size of the pieces the stream is fed
// in (1..256 bytes, 0 = all at once); the rest is the received byte stream.
//
// Properties: FrameDecoder never holds more than limit + 4 bytes of an
// incomplete frame, fails only with kProtocol and then stays failed; every
// frame it yields is within the limit; feeding the same stream whole gives
// the same frames; every yielded payload either decodes into an Envelope or
// fails with kProtocol; a decoded envelope re-serialises and re-frames into
// a frame that decodes to the same envelope.
#include <cstdint>
#include <string>
#include <vector>

#include "shared/core/assert.h"
#include "shared/core/bytes.h"
#include "shared/wire/envelope.h"
#include "shared/wire/frame.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace mistore;

struct Fed {
  std::vector<Bytes> frames;
  Status status;
};

Fed FeedAll(const uint8_t* data, size_t size, size_t limit, size_t piece) {
  Fed out;
  FrameDecoder dec(limit);
  size_t off = 0;
  while (off < size) {
    const size_t n = piece == 0 ? size - off : std::min(piece, size - off);
    Status st = dec.Feed(data + off, n);
    off += n;
    MS_ASSERT(dec.buffered_bytes() <= limit + kFrameHeaderBytes);
    Bytes f;
    while (dec.Next(&f)) {
      MS_ASSERT(f.size() <= limit);
      out.frames.push_back(std::move(f));
    }
    if (!st.ok()) {
      MS_ASSERT(st.code() == Code::kProtocol);
      // Poisoned: everything after fails too and yields nothing.
      const uint8_t more[1] = {0};
      MS_ASSERT(dec.Feed(more, 1).code() == Code::kProtocol);
      MS_ASSERT(!dec.Next(&f));
      out.status = st;
      break;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietProtobufLogs();
  if (size < 2) return 0;
  const size_t limit = size_t{64} << (data[0] % 18);
  const size_t piece = data[1];
  data += 2;
  size -= 2;

  const Fed pieces = FeedAll(data, size, limit, piece);
  const Fed whole = FeedAll(data, size, limit, 0);
  MS_ASSERT(pieces.frames == whole.frames);
  MS_ASSERT(pieces.status.ok() == whole.status.ok());

  for (const Bytes& payload : pieces.frames) {
    pb::Envelope env;
    Status st = DecodeEnvelope(payload, &env);
    if (!st.ok()) {
      MS_ASSERT(st.code() == Code::kProtocol);
      continue;
    }
    (void)ResponseStatus(env);
    const Bytes frame = EncodeEnvelopeFrame(env);
    MS_ASSERT(frame.size() >= kFrameHeaderBytes);
    FrameDecoder again(frame.size());
    MS_ASSERT(again.Feed(frame.data(), frame.size()).ok());
    Bytes back;
    MS_ASSERT(again.Next(&back));
    MS_ASSERT(back.size() + kFrameHeaderBytes == frame.size());
    pb::Envelope env2;
    MS_ASSERT(DecodeEnvelope(back, &env2).ok());
    MS_ASSERT(env2.SerializeAsString() == env.SerializeAsString());
  }
  return 0;
}
