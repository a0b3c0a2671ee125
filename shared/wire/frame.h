// Length-prefixed frames: [u32 little-endian payload length][payload].
// The payload is one serialized mistore.pb.Envelope. FrameDecoder is a pure
// incremental parser (no I/O): the transport feeds it received bytes and
// pulls whole frames. One decoder per connection, used from that
// connection's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

#include "shared/core/bytes.h"
#include "shared/core/status.h"

namespace mistore {

constexpr size_t kFrameHeaderBytes = 4;
// Default hard limit on one frame's payload: a 4 MiB chunk plus envelope.
constexpr size_t kFrameBytesMaxDefault = 8u << 20;

// Appends the frame for `payload` to `out`.
void EncodeFrame(const uint8_t* payload, size_t len, Bytes* out);

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t frame_bytes_max = kFrameBytesMaxDefault)
      : frame_bytes_max_(frame_bytes_max) {}

  // Consumes `len` bytes. Returns kProtocol once a frame header announces
  // more than frame_bytes_max; the decoder is then poisoned (every later
  // call fails) and the connection must be closed.
  Status Feed(const uint8_t* data, size_t len);

  // Moves the next complete frame payload into *out. False if none.
  bool Next(Bytes* out);

  // Bytes held for an incomplete frame (bounded by frame_bytes_max + 4).
  size_t buffered_bytes() const { return partial_.size(); }
  size_t frame_bytes_max() const { return frame_bytes_max_; }

 private:
  size_t frame_bytes_max_;
  Bytes partial_;             // bytes of the frame being assembled
  std::deque<Bytes> ready_;   // complete payloads not yet taken
  bool poisoned_ = false;
};

}  // namespace mistore
