// SPDX-License-Identifier: Apache-2.0
#include "castor/logger.hpp"

#include <cstdlib>
#include <iostream>
#include <pthread.h>

#include "commands.hpp"

namespace castor::service {

sigset_t signal_watcher::stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void signal_watcher::block_signals() {
  auto blocked = stop_signals();
  sigaddset(&blocked, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
}

signal_watcher::signal_watcher() : thread_([this] { watch(); }) {}

signal_watcher::~signal_watcher() {
  done_ = true;
  // Wakes the watcher at once.
  pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

void signal_watcher::on_stop(std::function<void()> on_stop) {
  std::lock_guard guard{mutex_};
  on_stop_ = std::move(on_stop);
  if (requested_ && on_stop_)
    on_stop_();
}

void signal_watcher::watch() {
  auto set = stop_signals();
  sigaddset(&set, SIGUSR1);
  int seen = 0;
  while (!done_) {
    int sig = sigwaitinfo(&set, nullptr);
    if (sig == SIGUSR1 || sig < 0)
      continue;
    auto name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    if (++seen > 1) {
      logger()->warn("castor: second {}: exits now, without finishing the stop "
                     "(nothing was committed past what was delivered)",
                     name);
      logger()->flush();
      std::_Exit(exit_unexpected);
    }
    logger()->info("castor: {} received: stopping", name);
    std::lock_guard guard{mutex_};
    requested_ = true;
    if (on_stop_)
      on_stop_();
  }
}

int fail(const caf::error& err) {
  std::cerr << "castor: " << render(err) << '\n';
  return exit_code_of(err);
}

} // namespace castor::service
