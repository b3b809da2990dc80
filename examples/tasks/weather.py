"""Tasks of examples/typed_chain.yaml. Ork calls each function with the task's inputs as keyword
arguments and records its return value (anything json.dumps accepts) as the task's output."""


def fetch(city, day):
    readings = [
        {"sensor": "north", "at": f"{day}T06:00:00Z", "celsius": 18.5},
        {"sensor": "south", "at": f"{day}T12:00:00Z", "celsius": 29.0},
        {"sensor": "roof", "at": f"{day}T15:00:00Z", "celsius": 31.25},
    ]
    print(f"fetched {len(readings)} readings for {city}")  # stdout lines become task logs
    return {"city": city, "day": day, "readings": readings}


def summarize(readings, day):
    hottest = max(readings, key=lambda r: r["celsius"])
    mean = sum(r["celsius"] for r in readings) / len(readings)
    return {"count": len(readings), "mean": round(mean, 2), "hottest": hottest["sensor"], "day": day}


def report(city, summary):
    return (f"{city} on {summary['day']}: {summary['count']} readings, "
            f"mean {summary['mean']} C, hottest at {summary['hottest']}")
