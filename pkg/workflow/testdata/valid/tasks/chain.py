def fetch():
    return {"readings": [], "limit": 30}


def summarize(readings, day, threshold):
    return {"count": len(readings), "max": 0.0}
