"""Task of examples/etl_mixed.yaml: converts order amounts to euros."""
import json
import os

inputs = json.loads(os.environ["ORK_INPUT_JSON"])
rates = inputs["rates"]
orders = []
for order in inputs["orders"]:
    amount = round(order["amount"] * rates[order["currency"]], 2)
    orders.append({**order, "amount": amount, "currency": "EUR"})
total = round(sum(o["amount"] for o in orders), 2)
print(f"converted {len(orders)} orders")
print("ORK_OUTPUT:" + json.dumps({"orders": orders, "total_eur": total}))
