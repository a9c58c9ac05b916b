#!/usr/bin/env python3
"""Run a program on a pseudo-terminal and play a dialogue with it.

usage: pty_run.py STEPS_FILE PROGRAM [ARGS...]

STEPS_FILE has one step a line:
  expect REGEX   wait (up to 30 s) until the output since the last expect
                 matches REGEX; fail (exit 3) otherwise
  send TEXT      type TEXT; Python escapes work: \\r Enter, \\t Tab,
                 \\x03 Ctrl-C, \\x04 Ctrl-D, \\x1b[A Up arrow
  delivered      wait (up to 30 s) until the program has no signal
                 pending: the signal a Ctrl-C sent (expect its echo ^C
                 first: the terminal sends it a moment after the key)
                 has reached its handler (two sent before that would be
                 merged into one)
  sleep SECONDS
The transcript goes to stdout, then a last line "__exit=N" with the
program's exit status (128+signal if a signal ended it).
"""
import os
import pty
import re
import select
import sys
import time


def read_some(fd, timeout):
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:           # EIO: the program has gone
        return None


def signals_pending(pid):
    """True while a signal to pid (or its main thread) is pending."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    if int(line.split()[1], 16) != 0:
                        return True
    except OSError:           # gone: nothing pending any more
        pass
    return False


def main():
    steps = open(sys.argv[1]).read().splitlines()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    out = b""
    mark = 0                  # where the next expect starts looking
    failed = None
    for step in steps:
        if not step.strip():
            continue
        verb, _, arg = step.partition(" ")
        if verb == "send":
            text = arg.encode().decode("unicode_escape").encode("latin-1")
            os.write(fd, text)
        elif verb == "sleep":
            time.sleep(float(arg))
        elif verb == "delivered":
            deadline = time.time() + 30
            while signals_pending(pid) and time.time() < deadline:
                time.sleep(0.01)
        elif verb == "expect":
            pat = re.compile(arg.encode(), re.S)
            # generous: an ASan build on a loaded machine starts slowly
            deadline = time.time() + 30
            m = pat.search(out, mark)
            while m is None and time.time() < deadline:
                chunk = read_some(fd, 0.1)
                if chunk is None:
                    break
                out += chunk
                m = pat.search(out, mark)
            if m is None:
                failed = arg
                break
            mark = m.end()
    if failed is not None:
        os.kill(pid, 9)
    done, status = 0, 0
    deadline = time.time() + 30
    while time.time() < deadline:   # the rest, until the program exits
        chunk = read_some(fd, 0.1)
        if chunk is None:
            break
        out += chunk
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            out += read_some(fd, 0.1) or b""
            break
    else:
        os.kill(pid, 9)
        done, status = os.waitpid(pid, 0)
    if not done:
        done, status = os.waitpid(pid, 0)
    code = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
            else 128 + os.WTERMSIG(status))
    sys.stdout.write(out.decode("utf-8", "replace"))
    if failed is not None:
        sys.stdout.write("\n__expect_failed=%s\n" % failed)
    sys.stdout.write("\n__exit=%d\n" % code)
    return 3 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
