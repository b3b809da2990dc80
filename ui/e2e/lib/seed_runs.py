"""Seeds a stopped ork serve's SQLite database with finished runs, for the runs page's measure.

    python3 seed_runs.py PATH/TO/.ork/ork.db COUNT [DAYS]

Running COUNT runs through the engine would take minutes; the runs page reads only the runs table
(joined with workflows), so this copies the newest run's row COUNT times, older and older: created_at
spread evenly over the DAYS (7) before it, started_at and finished_at moved with it, a new UUIDv7 id
from each created_at (so ids sort like the times, as the engine's do), every tenth run failed. No
task rows: a run list does not read them. It prints the number of runs in the table afterwards.
"""

import calendar
import os
import sqlite3
import sys
import time

FRACTION = 9  # digits of the stored times: 2006-01-02T15:04:05.000000000Z


def parse_ns(s):
    if s is None:
        return None
    secs = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    frac = s[20:-1].ljust(FRACTION, "0")[:FRACTION]
    return secs * 10**9 + int(frac)


def format_ns(ns):
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def uuid7(ms):
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    v = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def main():
    db, count = sys.argv[1], int(sys.argv[2])
    days = float(sys.argv[3]) if len(sys.argv) > 3 else 7.0
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    newest = con.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY created_at DESC, id DESC LIMIT 1").fetchone()
    if newest is None:
        sys.exit("no run to copy in " + db)
    model = dict(zip(cols, newest))
    created = parse_ns(model["created_at"])
    started = parse_ns(model["started_at"])
    finished = parse_ns(model["finished_at"])
    step = int(days * 86400 * 10**9 / count)

    def rows():
        for i in range(1, count + 1):
            c = created - i * step
            r = dict(model)
            r["id"] = uuid7(c // 10**6)
            r["created_at"] = format_ns(c)
            r["started_at"] = format_ns(c + started - created) if started is not None else None
            r["finished_at"] = format_ns(c + finished - created) if finished is not None else None
            r["idempotency_key"] = None
            r["scheduled_for"] = None
            if i % 10 == 0:
                r["status"], r["error"] = "failed", "task two: exit status 1"
            yield tuple(r[k] for k in cols)

    with con:
        con.executemany(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows())
    print(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    con.close()


if __name__ == "__main__":
    main()
