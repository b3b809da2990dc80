"""Tasks of examples/etl_mixed.yaml."""
import csv
import os
import tempfile


def extract():
    return [
        {"id": 1, "amount": 120.0, "currency": "EUR", "placed": "2024-03-01"},
        {"id": 2, "amount": 80.5, "currency": "USD", "placed": "2024-03-01"},
        {"id": 3, "amount": 42.0, "currency": "GBP", "placed": "2024-03-02"},
    ]


def load(orders, total_eur):
    run = os.environ.get("ORK_RUN_ID", "local")
    path = os.path.join(tempfile.gettempdir(), f"ork-example-orders-{run}.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "amount", "currency", "placed"])
        writer.writeheader()
        writer.writerows(orders)
    print(f"wrote {len(orders)} orders, {total_eur:.2f} EUR in total, to {path}")
    return {"path": path, "rows": len(orders)}
