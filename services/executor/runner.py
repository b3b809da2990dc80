"""Ork's python task runner.

Usage: python -u runner.py (file PATH | module NAME) FUNCTION

The executor's zygote (zygote.py) imports this file once and calls main() in each forked child.

Imports the task's file or module, calls FUNCTION with the task inputs as keyword arguments and
writes one JSON envelope on file descriptor 3, a channel the task's own prints cannot reach:
{"ok": true, "output": <return value>} or {"ok": false, "error": "<Type>: <message>"}, with
"reason": "output" when the return value cannot be encoded.
Inputs come from ORK_INPUT_JSON, or from stdin when that variable is absent (large inputs).
"""

import importlib
import importlib.util
import json
import os
import sys
import traceback

RESULT_FD = 3


def open_result_channel():
    # Move the result pipe to a descriptor that child processes do not inherit, and free fd 3.
    fd = os.dup(RESULT_FD)
    os.set_inheritable(fd, False)
    os.close(RESULT_FD)
    return os.fdopen(fd, "w", encoding="utf-8")


def read_inputs():
    raw = os.environ.get("ORK_INPUT_JSON")
    if raw is None:
        raw = sys.stdin.read()
    sys.stdin.close()
    sys.stdin = open(os.devnull, "r", encoding="utf-8")
    if not raw.strip():
        return {}
    inputs = json.loads(raw)
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise TypeError("the task inputs must be a JSON object, got %s" % type(inputs).__name__)
    return inputs


def load(kind, target):
    if kind == "file":
        directory = os.path.dirname(os.path.abspath(target))
        sys.path.insert(0, directory)
        name = os.path.splitext(os.path.basename(target))[0] or "task"
        spec = importlib.util.spec_from_file_location(name, target)
        if spec is None or spec.loader is None:
            raise ImportError("cannot import %s" % target)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        # Compiled from the source every time, never from a cached .pyc: one written by an earlier
        # version of the file in the same second, with the same size, would pass for current.
        with open(target, "rb") as f:
            code = compile(f.read(), target, "exec", dont_inherit=True)
        exec(code, module.__dict__)
        return module
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(target)


def describe(exc):
    message = str(exc)
    name = type(exc).__name__
    return "%s: %s" % (name, message) if message else name


def main(argv=None):
    result = open_result_channel()
    kind, target, function = (sys.argv[1:] if argv is None else argv)[:3]
    code = 0
    try:
        inputs = read_inputs()
        module = load(kind, target)
        fn = getattr(module, function, None)
        if fn is None or not callable(fn):
            raise AttributeError("%s has no function %s" % (target, function))
        value = fn(**inputs)
        try:
            encoded = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            envelope = {
                "ok": False,
                "reason": "output",
                "error": "the return value of %s is not JSON-serializable: %s" % (function, exc),
            }
            code = 1
        else:
            envelope = None
            result.write('{"ok": true, "output": ' + encoded + "}")
    except SystemExit as exc:
        envelope = {"ok": False, "error": "the task called sys.exit(%r) instead of returning" % (exc.code,)}
        code = 1
    except BaseException as exc:  # noqa: B902 - every failure must reach the executor
        sys.stdout.flush()
        traceback.print_exc()
        envelope = {"ok": False, "error": describe(exc)}
        code = 1
    if envelope is not None:
        result.write(json.dumps(envelope))
    result.close()
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
