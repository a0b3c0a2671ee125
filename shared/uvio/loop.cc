#include "shared/uvio/loop.h"

#include <uv.h>

#include "shared/core/assert.h"

namespace mistore {

struct EventLoop::Timer {
  uv_timer_t handle;
  EventLoop* loop;
  TimerId id;
  bool periodic;
  std::function<void()> fn;
};

EventLoop::EventLoop(int work_in_flight_max) : work_in_flight_max_(work_in_flight_max) {
  loop_ = new uv_loop_t;
  int rc = uv_loop_init(loop_);
  if (rc != 0) FatalExit("uv_loop_init", uv_strerror(rc));
}

EventLoop::~EventLoop() {
  for (auto& [id, t] : timers_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
             [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
  }
  timers_.clear();
  for (auto& [sig, h] : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* h) {
      delete static_cast<std::function<void()>*>(h->data);
      delete reinterpret_cast<uv_signal_t*>(h);
    });
  }
  signals_.clear();
  // Let close callbacks (and anything else pending) finish.
  uv_run(loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop_);
  if (rc != 0) {
    uv_walk(loop_, [](uv_handle_t* h, void*) {
      if (!uv_is_closing(h)) uv_close(h, nullptr);
    }, nullptr);
    uv_run(loop_, UV_RUN_DEFAULT);
    uv_loop_close(loop_);
  }
  delete loop_;
}

void EventLoop::Run() { uv_run(loop_, UV_RUN_DEFAULT); }
void EventLoop::Stop() { uv_stop(loop_); }
uint64_t EventLoop::NowMs() const { return uv_now(loop_); }

void EventLoop::OnTimer(uv_timer_t* handle) {
  Timer* t = static_cast<Timer*>(handle->data);
  EventLoop* self = t->loop;
  TimerId id = t->id;
  if (!t->periodic) {
    std::function<void()> fn = std::move(t->fn);
    self->Cancel(id);
    fn();
  } else {
    t->fn();  // may Cancel(id); the handle is closed asynchronously
  }
}

void EventLoop::StartTimer(Timer* t, uint64_t delay_ms, uint64_t period_ms) {
  uv_timer_init(loop_, &t->handle);
  t->handle.data = t;
  timers_[t->id] = t;
  uv_timer_start(&t->handle, &EventLoop::OnTimer, delay_ms, period_ms);
}

TimerId EventLoop::After(uint64_t delay_ms, std::function<void()> fn) {
  Timer* t = new Timer{{}, this, next_timer_id_++, false, std::move(fn)};
  StartTimer(t, delay_ms, 0);
  return t->id;
}

TimerId EventLoop::Every(uint64_t period_ms, std::function<void()> fn) {
  Timer* t = new Timer{{}, this, next_timer_id_++, true, std::move(fn)};
  StartTimer(t, period_ms, period_ms);
  return t->id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  Timer* t = it->second;
  timers_.erase(it);
  uv_timer_stop(&t->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
           [](uv_handle_t* h) { delete static_cast<Timer*>(h->data); });
}

void EventLoop::OnSignal(int signum, std::function<void()> fn) {
  MS_ASSERT(signals_.count(signum) == 0);
  auto* h = new uv_signal_t;
  uv_signal_init(loop_, h);
  h->data = new std::function<void()>(std::move(fn));
  uv_signal_start(h, [](uv_signal_t* h, int) {
    (*static_cast<std::function<void()>*>(h->data))();
  }, signum);
  uv_unref(reinterpret_cast<uv_handle_t*>(h));  // signals alone keep no loop alive
  signals_[signum] = h;
}

namespace {
struct WorkReq {
  uv_work_t req;
  EventLoop* loop;
  int* in_flight;
  std::function<void()> work;
  std::function<void()> done;
};
}  // namespace

Status EventLoop::QueueWork(std::function<void()> work, std::function<void()> done) {
  if (work_in_flight_ >= work_in_flight_max_)
    return ResourceExhausted("worker queue full (" + std::to_string(work_in_flight_max_) + ")");
  auto* w = new WorkReq{{}, this, &work_in_flight_, std::move(work), std::move(done)};
  w->req.data = w;
  int rc = uv_queue_work(
      loop_, &w->req, [](uv_work_t* r) { static_cast<WorkReq*>(r->data)->work(); },
      [](uv_work_t* r, int) {
        auto* w = static_cast<WorkReq*>(r->data);
        (*w->in_flight)--;
        w->done();
        delete w;
      });
  if (rc != 0) {
    delete w;
    return Internal(std::string("uv_queue_work: ") + uv_strerror(rc));
  }
  work_in_flight_++;
  return Status::Ok();
}

}  // namespace mistore
