// The test workflows, written by the harness into the server's scratch folder. Tasks that must be
// seen while they run wait on a gate file (gates/<run id>.<task>) that the test creates when it has
// seen what it wanted: no test depends on how fast a task or the machine is.

const talkPy = `import json, os, sys, time

inputs = json.loads(os.environ.get("ORK_INPUT_JSON") or "{}")
greeting = inputs.get("greeting", "hello")
gate = os.path.join("gates", os.environ["ORK_RUN_ID"] + "." + os.environ["ORK_TASK_NAME"])

print(f"{greeting}: first line", flush=True)
print(f"{greeting}: a warning on stderr", file=sys.stderr, flush=True)
deadline = time.time() + 300
tick = 0
while not os.path.exists(gate):
    if time.time() > deadline:
        sys.exit("the gate never opened")
    time.sleep(0.05)
    tick += 1
    if tick % 40 == 0:
        print(f"{greeting}: still waiting ({tick // 20} s)", flush=True)
print(f"{greeting}: past the gate", flush=True)
`;

const gatePy = `import os, sys, time

gate = os.path.join("gates", os.environ["ORK_RUN_ID"] + "." + os.environ["ORK_TASK_NAME"])
deadline = time.time() + 300
while not os.path.exists(gate):
    if time.time() > deadline:
        sys.exit("the gate never opened")
    time.sleep(0.05)
print("gate open", flush=True)
`;

const bigLogPy = `import sys

n = int(sys.argv[1])
out = sys.stdout
for i in range(1, n + 1):
    out.write(f"line {i} of {n}\\n")
    if i % 1000 == 0:
        print(f"stderr line {i}", file=sys.stderr)
out.flush()
`;

// A param workflow: talk prints lines starting with the parameter to stdout and stderr, then waits
// for its gate; prepare runs before it and finish after it.
const live = `name: e2e_live
description: a parameter, a task that prints as it runs and waits for its gate
params:
  greeting: {type: str, default: hello, description: the word every log line of talk starts with}
tasks:
  prepare:
    executor: process
    command: [echo, preparing]
  talk:
    executor: process
    command: [python3, talk.py]
    depends_on: [prepare]
    input_type: {greeting: str}
    inputs:
      greeting: {ref: params.greeting}
  finish:
    executor: process
    command: [echo, finished]
    depends_on: [talk]
`;

// Fails until the file "fixed" exists in the folder: a rerun of what failed then succeeds.
const fixable = `name: e2e_fixable
description: fails until the file "fixed" exists; then a rerun of what failed succeeds
tasks:
  prepare:
    executor: shell
    command: echo prepared
  flaky:
    executor: shell
    command: "if [ -f fixed ]; then echo fixed now; else echo 'not fixed yet' >&2; exit 3; fi"
    depends_on: [prepare]
  report:
    executor: process
    command: [echo, reported]
    depends_on: [flaky]
`;

const slow = `name: e2e_slow
description: a task that runs for ten minutes unless cancelled
tasks:
  wait:
    executor: shell
    command: "echo waiting; exec sleep 600"
    timeout: 0
  after:
    executor: noop
    depends_on: [wait]
`;

const quick = `name: e2e_quick
description: two quick tasks
tasks:
  one:
    executor: process
    command: [echo, one]
  two:
    executor: process
    command: [echo, two]
    depends_on: [one]
`;

const bigLog = `name: e2e_biglog
description: one task printing 50,000 lines
tasks:
  shout:
    executor: process
    command: [python3, biglog.py, "50000"]
`;

// 1,000 tasks: start waits for its gate, then 999 noop tasks in layers of 50, each depending on
// one or two tasks of the layer before.
function wide(n = 1000, layer = 50) {
  const name = (i) => `t${String(i).padStart(4, '0')}`;
  let y = `name: e2e_wide\ndescription: ${n} tasks in layers of ${layer}\ntasks:\n`;
  y += `  ${name(0)}:\n    executor: process\n    command: [python3, gate.py]\n`;
  for (let i = 1; i < n; i++) {
    const deps = new Set();
    if (i < layer) deps.add(0);
    else {
      deps.add(i - layer);
      if ((i + 1) % layer !== 0) deps.add(i - layer + 1);
    }
    y += `  ${name(i)}:\n    executor: noop\n    depends_on: [${[...deps].map(name).join(', ')}]\n`;
  }
  return y;
}

/** Every file of the scratch folder: name → content. */
export const workflowFiles = {
  'talk.py': talkPy,
  'gate.py': gatePy,
  'biglog.py': bigLogPy,
  'gates/.keep': '',
  'e2e_live.yaml': live,
  'e2e_fixable.yaml': fixable,
  'e2e_slow.yaml': slow,
  'e2e_quick.yaml': quick,
  'e2e_biglog.yaml': bigLog,
  'e2e_wide.yaml': wide(),
};
