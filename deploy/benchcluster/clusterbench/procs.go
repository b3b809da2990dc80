package clusterbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ork-go/ork/deploy/processes"
)

// loadAverage returns the one-minute load average, or -1 when /proc/loadavg cannot be read.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// postgresBackends returns the pids of the PostgreSQL server processes serving database db on this
// machine: a backend's process title is "postgres: [cluster: ]user db host(port) state".
func postgresBackends(db string) []int {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil
	}
	var pids []int
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !isBackendOf(string(data), db) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(d)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isBackendOf reports whether a process's command line (NUL-separated) is the title of a
// PostgreSQL backend connected to database db.
func isBackendOf(cmdline, db string) bool {
	title := strings.TrimRight(strings.ReplaceAll(cmdline, "\x00", " "), " ")
	if !strings.HasPrefix(title, "postgres: ") {
		return false
	}
	return strings.Contains(" "+title+" ", " "+db+" ")
}

// cpuOf sums the CPU time of the given pids; pids that have exited count as zero.
func cpuOf(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		if d, err := processes.ProcCPUTime(pid); err == nil {
			total += d
		}
	}
	return total
}

// writePIDFiles writes <name>.pid into dir for each process, the layout `ork bench --devstack-dir`
// reads its CPU and memory figures from.
func writePIDFiles(dir string, pids map[string]int) error {
	for name, pid := range pids {
		if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing pid file: %w", err)
		}
	}
	return nil
}
