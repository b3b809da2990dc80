package clusterbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// profileSeconds is the length of the recorder's CPU profile: it starts when the recorder is
// ready, so it covers the first profileSeconds of the backlog.
const profileSeconds = 2

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return addr, nil
}

// fetchProfile starts fetching a CPU profile from a service's /debug/pprof/ into path; the channel
// receives the outcome.
func fetchProfile(ctx context.Context, base, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			body, err := get(ctx, base+"/debug/pprof/profile?seconds="+strconv.Itoa(profileSeconds), profileSeconds*time.Second+30*time.Second)
			if err != nil {
				return fmt.Errorf("profiling the recorder: %w", err)
			}
			if err := os.WriteFile(path, body, 0o644); err != nil {
				return fmt.Errorf("writing the recorder's profile: %w", err)
			}
			return nil
		}()
	}()
	return done
}

// commitSeconds reads the sum of the recorder's commit_seconds histogram for ORK_EVENTS from its
// /metrics, or -1 when it cannot.
func commitSeconds(ctx context.Context, base string) float64 {
	body, err := get(ctx, base+"/metrics", 10*time.Second)
	if err != nil {
		return -1
	}
	return metricValue(string(body), `ork_recorder_commit_seconds_sum{stream="`+event.StreamEvents+`"}`)
}

// metricValue returns the value of the sample named exactly name (with its labels) in a Prometheus
// text exposition, or -1.
func metricValue(text, name string) float64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return -1
		}
		return v
	}
	return -1
}

func get(ctx context.Context, url string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("requesting %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("requesting %s: %s", url, resp.Status)
	}
	return body, nil
}
