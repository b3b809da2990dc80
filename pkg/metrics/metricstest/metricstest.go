// Package metricstest helps tests read a service's metrics endpoint: it scrapes /metrics over HTTP,
// looks up a series' value in the text exposition, and learns a server's bound address from the
// service's log.
package metricstest

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

// scrapeTimeout bounds one scrape.
const scrapeTimeout = 10 * time.Second

// Scrape GETs http://addr/metrics and returns the body; it fails the test unless the answer is 200.
func Scrape(t testing.TB, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading scrape of %s: %v", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s\n%s", addr, resp.Status, body)
	}
	return string(body)
}

// Value returns the value of series in a text exposition body. series is written as Prometheus
// prints it, labels in name order: `ork_x_total{status="success",type="noop"}`, or a bare name.
func Value(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, series)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// Want fails the test unless series is in body with a value for which ok is true.
func Want(t testing.TB, body, series string, ok func(float64) bool, what string) {
	t.Helper()
	v, found := Value(body, series)
	switch {
	case !found:
		t.Errorf("series %s missing from the scrape", series)
	case !ok(v):
		t.Errorf("%s = %v, want %s", series, v, what)
	}
}

// AtLeast is a Want predicate.
func AtLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }

// Equal is a Want predicate.
func Equal(n float64) func(float64) bool { return func(v float64) bool { return v == n } }

// LoggedAddr returns a logger writing to the test's log, and a channel that receives the addr field
// of the first "serving metrics" entry logged through it (see metrics.Server.Run).
func LoggedAddr(t testing.TB) (*zap.Logger, <-chan string) {
	ch := make(chan string, 1)
	tap := &addrCore{ch: ch}
	log := zaptest.NewLogger(t).WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, tap) }))
	return log, ch
}

// WaitAddr waits for LoggedAddr's channel, failing the test after a deadline.
func WaitAddr(t testing.TB, ch <-chan string) string {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("the metrics server did not start")
		return ""
	}
}

// addrCore passes the metrics server's address from its log entry to a channel.
type addrCore struct {
	ch     chan string
	fields []zapcore.Field
}

func (c *addrCore) Enabled(zapcore.Level) bool { return true }

func (c *addrCore) With(fields []zapcore.Field) zapcore.Core {
	return &addrCore{ch: c.ch, fields: append(append([]zapcore.Field(nil), c.fields...), fields...)}
}

func (c *addrCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message != "serving metrics" {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c *addrCore) Write(_ zapcore.Entry, fields []zapcore.Field) error {
	for _, f := range append(c.fields, fields...) {
		if f.Key == "addr" && f.Type == zapcore.StringType {
			select {
			case c.ch <- f.String:
			default:
			}
		}
	}
	return nil
}

func (c *addrCore) Sync() error { return nil }
