#include "launcher/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

namespace gf::launcher {
namespace {

std::atomic<pid_t> g_child{0};

// Signals sent by a process (kill, scancel) reach only us: pass them on. Those a terminal
// sends (Ctrl-C) already reached the child, which is in our process group.
void forward_signal(int signal, siginfo_t* info, void*) {
  const pid_t child = g_child.load();
  if (child > 0 && info->si_code != SI_KERNEL) kill(child, signal);
}

}  // namespace

std::string self_executable() {
  std::vector<char> buffer(4096);
  const ssize_t n = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  if (n <= 0) throw std::runtime_error(std::string("/proc/self/exe: ") + std::strerror(errno));
  return std::string(buffer.data(), static_cast<size_t>(n));
}

namespace {

enum class Pumped { kData, kNothing, kEnd };

// Copies what the pipe holds now to our stderr and hands out complete lines.
Pumped pump(int fd, std::string& pending, const std::function<void(const std::string&)>& on_line) {
  char buffer[4096];
  const ssize_t n = read(fd, buffer, sizeof buffer);
  if (n == 0) return Pumped::kEnd;
  if (n < 0) return errno == EINTR || errno == EAGAIN ? Pumped::kNothing : Pumped::kEnd;
  for (ssize_t written = 0; written < n;) {
    const ssize_t w = write(STDERR_FILENO, buffer + written, static_cast<size_t>(n - written));
    if (w < 0 && errno != EINTR) break;
    if (w > 0) written += w;
  }
  pending.append(buffer, static_cast<size_t>(n));
  for (size_t end; (end = pending.find('\n')) != std::string::npos; pending.erase(0, end + 1))
    on_line(pending.substr(0, end));
  return Pumped::kData;
}

}  // namespace

int run_and_wait(const std::vector<std::string>& argv, const std::function<void(const std::string&)>& on_stderr_line) {
  struct sigaction action {};
  action.sa_sigaction = forward_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  const int forwarded[] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction previous[3];
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &action, &previous[i]);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err_pipe[2] = {-1, -1};
  if (on_stderr_line && pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
    if (err_pipe[1] >= 0) dup2(err_pipe[1], STDERR_FILENO);
    execvp(args[0], args.data());
    std::cerr << "greenfound: error: cannot run " << argv[0] << ": " << std::strerror(errno) << std::endl;
    _exit(127);
  }
  g_child = child;
  int status = 0;
  if (err_pipe[0] >= 0) {
    close(err_pipe[1]);
    std::string pending;
    bool open = true;
    for (;;) {
      pollfd fd{err_pipe[0], POLLIN, 0};
      if (open && poll(&fd, 1, 200) > 0) open = pump(err_pipe[0], pending, on_stderr_line) != Pumped::kEnd;
      const pid_t done = waitpid(child, &status, WNOHANG);
      if (done == child) break;
      if (done < 0 && errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
      if (!open) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // What the child wrote before it exited; a grandchild still holding the pipe is not waited for.
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    while (open && pump(err_pipe[0], pending, on_stderr_line) == Pumped::kData) {
    }
    if (!pending.empty()) on_stderr_line(pending);
    close(err_pipe[0]);
  } else {
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
    }
  }
  g_child = 0;
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return EXIT_FAILURE;
}

}  // namespace gf::launcher
