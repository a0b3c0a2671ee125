// EventLoop: the one libuv loop of a daemon (or of the CLI while it runs a
// command). This folder (shared/uvio) is the only place that includes
// <uv.h>; protocol code above it sees time as a number and I/O as messages.
// Everything here runs on the loop thread, except the `work` half of
// QueueWork, which runs on libuv's thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "shared/core/status.h"

struct uv_loop_s;
struct uv_timer_s;
struct uv_signal_s;

namespace mistore {

using TimerId = uint64_t;

class EventLoop {
 public:
  // work_in_flight_max bounds QueueWork (backpressure, not buffering).
  explicit EventLoop(int work_in_flight_max = 8);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Run();   // until Stop() or no more handles
  void Stop();  // from the loop thread (signal handlers included)

  uint64_t NowMs() const;  // monotonic, milliseconds

  TimerId After(uint64_t delay_ms, std::function<void()> fn);
  TimerId Every(uint64_t period_ms, std::function<void()> fn);
  void Cancel(TimerId id);

  // Calls fn on the loop thread when the process receives signum.
  void OnSignal(int signum, std::function<void()> fn);

  // Runs `work` on the thread pool and then `done` on the loop thread.
  // kResourceExhausted when work_in_flight_max jobs are already queued.
  Status QueueWork(std::function<void()> work, std::function<void()> done);
  int work_in_flight() const { return work_in_flight_; }

  uv_loop_s* raw() { return loop_; }

 private:
  struct Timer;
  void StartTimer(Timer* t, uint64_t delay_ms, uint64_t period_ms);
  static void OnTimer(uv_timer_s* handle);

  uv_loop_s* loop_;
  TimerId next_timer_id_ = 1;
  std::map<TimerId, Timer*> timers_;
  std::map<int, uv_signal_s*> signals_;
  int work_in_flight_ = 0;
  int work_in_flight_max_;
};

}  // namespace mistore
