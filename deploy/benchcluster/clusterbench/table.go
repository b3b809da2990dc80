package clusterbench

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
)

func numCPU() int { return runtime.NumCPU() }

// tableGroups are the per-service columns of the scaling table, in order.
var tableGroups = []string{"nats-server", "scheduler", "executors", "recorder", "postgres"}

// WriteScalingTable prints one row per scaling point: tasks/s, CPU ms per task of each service and
// each service's CPU over the wall time (% of one core), with the busiest named.
func WriteScalingTable(w io.Writer, pts []ScalePoint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"scenario", "exec", "#", "load", "s", "tasks/s", "recorded"}
	for _, g := range tableGroups {
		head = append(head, g+" ms/task (%)")
	}
	head = append(head, "total ms/task", "total %", "busiest", "")
	_, _ = fmt.Fprintln(tw, strings.Join(head, "\t"))
	sorted := slices.Clone(pts)
	slices.SortStableFunc(sorted, func(a, b ScalePoint) int {
		if c := strings.Compare(a.Scenario, b.Scenario); c != 0 {
			return c
		}
		if a.Executors != b.Executors {
			return a.Executors - b.Executors
		}
		return a.Repeat - b.Repeat
	})
	for _, p := range sorted {
		row := []string{p.Scenario, fmt.Sprint(p.Executors), fmt.Sprint(p.Repeat), fmt.Sprintf("%.1f", p.Load1),
			fmt.Sprintf("%.2f", p.Seconds), fmt.Sprintf("%.0f", p.TasksPerSec), fmt.Sprint(p.TasksRecorded)}
		for _, g := range tableGroups {
			c, ok := p.service(g)
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.3f (%.0f)", c.MsPerTask, c.Percent))
		}
		busy := p.Busiest()
		row = append(row, fmt.Sprintf("%.3f", p.TotalMsPerTask), fmt.Sprintf("%.0f", p.TotalPercent),
			fmt.Sprintf("%s %.0f%%", busy.Service, busy.Percent), "")
		_, _ = fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// service returns the entry of a column group.
func (p ScalePoint) service(group string) (ServiceCPU, bool) {
	i := slices.IndexFunc(p.Services, func(c ServiceCPU) bool { return c.Service == group })
	if i < 0 {
		return ServiceCPU{}, false
	}
	return p.Services[i], true
}

// Busiest returns the single process with the highest CPU share: the executors are looked at one
// by one, since each is its own process.
func (p ScalePoint) Busiest() ServiceCPU {
	var best ServiceCPU
	for _, c := range p.Services {
		if c.Service == "executors" && p.hasInstances() {
			continue
		}
		if c.Percent > best.Percent {
			best = c
		}
	}
	return best
}

func (p ScalePoint) hasInstances() bool {
	return slices.ContainsFunc(p.Services, func(c ServiceCPU) bool { return strings.HasPrefix(c.Service, "executor-") })
}

// WriteCeilingTable prints one row per recorder measurement.
func WriteCeilingTable(w io.Writer, pts []CeilingPoint) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "batch size\t#\tload\tevents\ts\tevents/s\tbatches\tmean batch\trecorder CPU s (%)\tnats CPU s (%)\tpostgres CPU s (%)\trecorder µs/event\tin ApplyBatch s (%)\t")
	sorted := slices.Clone(pts)
	slices.SortStableFunc(sorted, func(a, b CeilingPoint) int {
		if a.BatchSize != b.BatchSize {
			return a.BatchSize - b.BatchSize
		}
		return a.Repeat - b.Repeat
	})
	for _, p := range sorted {
		pct := func(cpu float64) string { return fmt.Sprintf("%.2f (%.0f)", cpu, 100*cpu/p.Seconds) }
		commit := "-"
		if p.CommitSeconds >= 0 {
			commit = pct(p.CommitSeconds)
		}
		_, _ = fmt.Fprintf(tw, "%d\t%d\t%.1f\t%d\t%.2f\t%.0f\t%d\t%.0f\t%s\t%s\t%s\t%.1f\t%s\t\n",
			p.BatchSize, p.Repeat, p.Load1, p.Events, p.Seconds, p.EventsPerSec, p.Batches, p.MeanBatch,
			pct(p.RecorderCPU), pct(p.NATSCPU), pct(p.PostgresCPU), 1e6*p.RecorderCPU/float64(p.Events), commit)
	}
	_ = tw.Flush()
}
