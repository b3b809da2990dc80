"""Ork's python zygote: a warm interpreter that forks one fresh child per task.

Usage: python -u zygote.py RUNNER [PRELOAD_MODULE ...]   (fd 3: a SOCK_SEQPACKET socket to the executor)

At start it imports the runner (runner.py) and the preload modules, then says {"ready": true}.
Each request from the executor is one JSON message {"id", "kind", "target", "function", "dir", "env"}
with four file descriptors attached (stdin, stdout, stderr, result). For each, the zygote forks; the
child starts a session of its own (so the executor can signal its whole process group), dies with
the zygote, takes the four descriptors as 0, 1, 2 and 3, moves to the task's directory and
environment and runs the runner, which imports the task's own file then: every task is a fresh fork
of a clean interpreter, and a changed task file is always picked up. The zygote answers
{"id", "pid"} after the fork (or {"id", "error"}) and {"id", "pid", "exit"} or {"id", "pid",
"signal"} when the child has ended. {"retire": true} makes it take no new request and exit once
its children have ended; so does the end of the socket.
"""

import importlib.util
import json
import traceback
import os
import select
import signal
import socket
import sys

SOCKET_FD = 3
MAX_REQUEST = 1 << 20
PR_SET_PDEATHSIG = 1


def load_runner(path):
    spec = importlib.util.spec_from_file_location("ork_runner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_prctl():
    """libc's prctl, loaded once in the zygote (importing ctypes costs milliseconds), or None."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except Exception:  # noqa: BLE001 - without prctl the executor still kills the group
        return None


PRCTL = load_prctl()


def die_with_parent():
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def child(runner, sock, req, fds, parent):
    code = 1
    try:
        os.setsid()
        die_with_parent()
        if os.getppid() != parent:  # the zygote died before prctl took effect
            os._exit(1)
        sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            # The executor's pipes come non-blocking (its poller's mode): a task reads and writes
            # them blocking, as it would its own.
            os.set_blocking(target, True)
        os.closerange(4, 1 << 16)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        # The task's resource limits, on this process before the task's code runs. The CPU time's
        # hard limit is a second later, so that the soft one's SIGXCPU says what happened.
        limits = req.get("limits") or {}
        if limits:
            import resource

            for name, value in limits.items():
                hard = value + 1 if name == "cpu" else value
                resource.setrlimit(getattr(resource, "RLIMIT_" + name.upper()), (value, hard))
        # The task's user (the executor's --run-as), before anything of the task's is touched: its
        # folder and its file are then opened with that user's rights.
        user = req.get("user")
        if user:
            os.setgroups(user["groups"])
            os.setgid(user["gid"])
            os.setuid(user["uid"])
            die_with_parent()  # a change of user clears the parent-death signal
            if os.getppid() != parent:
                os._exit(1)
        os.chdir(req["dir"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = ["runner", req["kind"], req["target"], req["function"]]
        runner.main(sys.argv[1:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: B902 - the child must never return into the zygote's loop
        try:
            traceback.print_exc()
        finally:
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main():
    runner = load_runner(sys.argv[1])
    for name in sys.argv[2:]:
        __import__(name)
    sock = socket.socket(fileno=SOCKET_FD)
    sock.setblocking(False)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getpid()
    running = {}  # pid -> request id
    retired = False

    def send(msg):
        sock.setblocking(True)
        try:
            sock.send(json.dumps(msg).encode())
        finally:
            sock.setblocking(False)

    def reap():
        while running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            rid = running.pop(pid, None)
            if rid is None:
                continue
            msg = {"id": rid, "pid": pid}
            if os.WIFSIGNALED(status):
                msg["signal"] = os.WTERMSIG(status)
            else:
                msg["exit"] = os.waitstatus_to_exitcode(status)
            send(msg)

    send({"ready": True, "pid": parent})

    while not (retired and not running):
        readable, _, _ = select.select(([] if retired else [sock]) + [wake_r], [], [])
        if wake_r in readable:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        reap()
        if sock in readable:
            try:
                data, fds, _, _ = socket.recv_fds(sock, MAX_REQUEST, 4)
            except BlockingIOError:
                continue
            if not data:
                retired = True
                continue
            req = json.loads(data)
            if req.get("retire"):
                retired = True
                continue
            if len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                send({"id": req.get("id"), "error": "expected 4 file descriptors, got %d" % len(fds)})
                continue
            try:
                pid = os.fork()
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                send({"id": req["id"], "error": "fork: %s" % exc})
                continue
            if pid == 0:
                child(runner, sock, req, fds, parent)
            for fd in fds:
                os.close(fd)
            running[pid] = req["id"]
            send({"id": req["id"], "pid": pid})
        reap()


if __name__ == "__main__":
    main()
