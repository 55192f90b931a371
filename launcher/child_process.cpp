#include "launcher/child_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>

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

int run_and_wait(const std::vector<std::string>& argv) {
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
  const pid_t child = fork();
  if (child < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
    execvp(args[0], args.data());
    std::cerr << "greenfound: error: cannot run " << argv[0] << ": " << std::strerror(errno) << std::endl;
    _exit(127);
  }
  g_child = child;
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  }
  g_child = 0;
  for (int i = 0; i < 3; ++i) sigaction(forwarded[i], &previous[i], nullptr);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return EXIT_FAILURE;
}

}  // namespace gf::launcher
