#include "muonlab/data/shard_bus_error.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

namespace muonlab::data {
namespace {

// Fixed storage, so the handler reads it without locks or allocation.
struct MappingSlot {
  std::atomic<int> state{0};  // kFree, kFilling or kLive
  const char* begin = nullptr;
  size_t bytes = 0;
  char path[1024] = {};
};
constexpr int kFree = 0, kFilling = 1, kLive = 2;
constexpr size_t kSlots = 4096;
std::array<MappingSlot, kSlots> slots;

void write_all(const char* text, size_t length) {
  while (length > 0) {
    const ssize_t written = ::write(STDERR_FILENO, text, length);
    if (written <= 0) return;
    text += written;
    length -= static_cast<size_t>(written);
  }
}
void write_text(const char* text) { write_all(text, std::strlen(text)); }

// Decimal digits of `value`, with only async-signal-safe calls.
void write_number(size_t value) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  std::reverse(digits, digits + n);
  write_all(digits, static_cast<size_t>(n));
}

extern "C" void on_bus_error(int signal, siginfo_t* info, void*) {
  const char* address = static_cast<const char*>(info->si_addr);
  for (const MappingSlot& slot : slots) {
    if (slot.state.load(std::memory_order_acquire) != kLive) continue;
    if (address < slot.begin || address >= slot.begin + slot.bytes) continue;
    write_text("muonlab: error: shard '");
    write_text(slot.path);
    write_text("' changed while it was being read: byte ");
    write_number(static_cast<size_t>(address - slot.begin));
    write_text(" of the ");
    write_number(slot.bytes);
    write_text(" it had when opened is gone (truncated or rewritten in place); restore the shard and continue the run"
               " with --resume\n");
    ::_exit(1);
  }
  // Not a shard's page: the default action, as if no handler were here.
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

void install_handler_once() {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction action {};
    action.sa_sigaction = on_bus_error;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, nullptr);
  });
}

}  // namespace

int register_shard_mapping(const void* begin, size_t bytes, const std::string& path) {
  install_handler_once();
  for (size_t i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (!slots[i].state.compare_exchange_strong(expected, kFilling)) continue;
    slots[i].begin = static_cast<const char*>(begin);
    slots[i].bytes = bytes;
    const size_t length = std::min(path.size(), sizeof(slots[i].path) - 1);
    std::memcpy(slots[i].path, path.data(), length);
    slots[i].path[length] = '\0';
    slots[i].state.store(kLive, std::memory_order_release);
    return static_cast<int>(i);
  }
  return -1;
}

void unregister_shard_mapping(int slot) {
  if (slot >= 0) slots[static_cast<size_t>(slot)].state.store(kFree, std::memory_order_release);
}

}  // namespace muonlab::data
