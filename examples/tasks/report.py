"""Tasks of examples/scheduled_report.yaml."""
from datetime import datetime, timezone


def collect(team):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return {"generated_at": now.isoformat().replace("+00:00", "Z"), "team": team, "open_tickets": 7}


def publish(generated_at, team, open_tickets):
    print(f"report of {generated_at} for {team}: {open_tickets} open tickets")
    return {"published": True}
