package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// process is one measured service process.
type process struct {
	service string
	pid     int // 0 means this process
}

// sample is a reading of one process.
type sample struct {
	cpu   time.Duration
	rssKB int64
	hwmKB int64
}

// read samples p now.
func (p process) read() (sample, error) {
	var s sample
	if p.pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return s, fmt.Errorf("reading own CPU time: %w", err)
		}
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	} else {
		cpu, err := procCPU(p.pid)
		if err != nil {
			return s, err
		}
		s.cpu = cpu
	}
	rss, hwm, err := procMemory(p.procDir())
	if err != nil {
		return s, err
	}
	s.rssKB, s.hwmKB = rss, hwm
	return s, nil
}

func (p process) procDir() string {
	if p.pid == 0 {
		return "/proc/self"
	}
	return "/proc/" + strconv.Itoa(p.pid)
}

// resetPeak resets the process's peak RSS (VmHWM) so the next read shows the peak since now. It
// fails where the kernel does not allow it; the peak is then the one since the process started.
func (p process) resetPeak() bool {
	return os.WriteFile(filepath.Join(p.procDir(), "clear_refs"), []byte("5"), 0) == nil
}

// procCPU reads utime + stime of pid.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis are
	// state (3), ... utime (14), stime (15).
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading CPU time of pid %d: malformed stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("reading CPU time of pid %d: malformed stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("reading CPU time of pid %d: malformed stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procMemory reads VmRSS and VmHWM (kB) from dir/status.
func procMemory(dir string) (rss, hwm int64, err error) {
	f, err := os.Open(filepath.Join(dir, "status"))
	if err != nil {
		return 0, 0, fmt.Errorf("reading memory: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("reading memory: %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// devstackProcesses lists the services of the dev stack whose pid files in dir name a live process,
// in name order.
func devstackProcesses(dir string) ([]process, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, fmt.Errorf("listing pid files: %w", err)
	}
	var ps []process
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
			continue
		}
		ps = append(ps, process{service: strings.TrimSuffix(filepath.Base(f), ".pid"), pid: pid})
	}
	slices.SortFunc(ps, func(a, b process) int { return strings.Compare(a.service, b.service) })
	return ps, nil
}

// meter measures a set of processes between start and stop.
type meter struct {
	procs []process
	start []sample
	reset []bool
	began time.Time
}

func startMeter(procs []process) (*meter, error) {
	m := &meter{procs: procs, start: make([]sample, len(procs)), reset: make([]bool, len(procs)), began: time.Now()}
	for i, p := range procs {
		m.reset[i] = p.resetPeak()
		s, err := p.read()
		if err != nil {
			return nil, err
		}
		m.start[i] = s
	}
	return m, nil
}

func (m *meter) stop() ([]Resource, error) {
	wall := time.Since(m.began).Seconds()
	out := make([]Resource, 0, len(m.procs))
	for i, p := range m.procs {
		s, err := p.read()
		if err != nil {
			return nil, err
		}
		cpu := (s.cpu - m.start[i].cpu).Seconds()
		r := Resource{
			Service:       p.service,
			PID:           p.pid,
			CPUSeconds:    cpu,
			RSSMB:         float64(s.rssKB) / 1024,
			PeakRSSMB:     float64(s.hwmKB) / 1024,
			PeakSinceBoot: !m.reset[i],
		}
		if wall > 0 {
			r.CPUPercent = 100 * cpu / wall
		}
		if p.pid == 0 {
			r.PID = os.Getpid()
		}
		out = append(out, r)
	}
	return out, nil
}

// machine describes this computer.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
				m.CPUModel = strings.TrimSpace(val)
				break
			}
		}
	}
	return m
}
