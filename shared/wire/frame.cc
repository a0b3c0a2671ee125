#include "shared/wire/frame.h"

#include <string>

namespace mistore {

void EncodeFrame(const uint8_t* payload, size_t len, Bytes* out) {
  MS_ASSERT(len <= UINT32_MAX);
  // Appended, not resized then overwritten: a 1 MiB frame is not zeroed first.
  out->reserve(out->size() + kFrameHeaderBytes + len);
  uint8_t header[kFrameHeaderBytes];
  PutLe32(header, uint32_t(len));
  out->insert(out->end(), header, header + kFrameHeaderBytes);
  if (len) out->insert(out->end(), payload, payload + len);
}

Status FrameDecoder::Feed(const uint8_t* data, size_t len) {
  if (poisoned_) return ProtocolError("frame stream already failed");
  while (len > 0) {
    if (partial_.size() < kFrameHeaderBytes) {
      size_t take = std::min(len, kFrameHeaderBytes - partial_.size());
      partial_.insert(partial_.end(), data, data + take);
      data += take;
      len -= take;
      if (partial_.size() < kFrameHeaderBytes) break;
      size_t announced = GetLe32(partial_.data());
      if (announced > frame_bytes_max_) {
        poisoned_ = true;
        partial_.clear();
        return ProtocolError("frame of " + std::to_string(announced) +
                             " bytes exceeds limit of " + std::to_string(frame_bytes_max_));
      }
      partial_.reserve(kFrameHeaderBytes + announced);
    }
    size_t want = kFrameHeaderBytes + GetLe32(partial_.data()) - partial_.size();
    size_t take = std::min(len, want);
    partial_.insert(partial_.end(), data, data + take);
    data += take;
    len -= take;
    if (take == want) {
      ready_.emplace_back(partial_.begin() + kFrameHeaderBytes, partial_.end());
      partial_.clear();
    }
  }
  return Status::Ok();
}

bool FrameDecoder::Next(Bytes* out) {
  if (ready_.empty()) return false;
  *out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

}  // namespace mistore
