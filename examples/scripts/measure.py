"""Task of examples/process_io.yaml: a plain script run as a process."""
import json
import os

inputs = json.loads(os.environ["ORK_INPUT_JSON"])
text = inputs["text"]
print(f"measuring {text!r}")
print("ORK_OUTPUT:" + json.dumps({"chars": len(text), "words": len(text.split())}))
