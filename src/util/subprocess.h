// Child processes: the sweep runs each cell in its own process (a crash in one
// cell cannot take the sweep down) and the report drives gnuplot.
#pragma once
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace semcodec {

// Starts argv[0] (looked up in PATH when it has no '/') with stdin from
// /dev/null and stdout + stderr appended to `output_path` ("" = inherited),
// this process's environment plus `env` ("NAME=value", overriding), and no
// blocked signals.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& output_path = "",
                    const std::vector<std::string>& env = {});
// A waitpid status as a shell would report it: the exit code, or 128 + signal number.
int exit_code_from_status(int status);
// Waits for one child; returns its exit code, or 128 + signal number when it was killed.
int wait_process(pid_t pid);
// Waits for any child; returns (pid, exit code as above).
std::pair<pid_t, int> wait_any_process();
// In a child started by spawn_process: ends this process when its parent
// dies (a sweep's cells do not outlive a killed sweep). `parent` is the pid
// the parent passed down; if it is already gone, this process exits at once.
// Linux only; elsewhere a no-op.
void die_with_parent(pid_t parent);
// Full path of `name` found in PATH, or "" when there is none.
std::string find_executable(const std::string& name);
// The running program's own path (/proc/self/exe).
std::string self_executable();

}  // namespace semcodec
