"""Task of examples/retries.yaml: fails on attempt 1, succeeds afterwards."""
import os


def main():
    attempt = int(os.environ.get("ORK_ATTEMPT", "1"))
    if attempt < 2:
        # An exception fails this attempt; Ork retries the task because it declares retries: 2.
        raise RuntimeError(f"simulated failure on attempt {attempt}")
    print(f"attempt {attempt} works")
    return {"attempt": attempt}
