package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/ork-go/ork/pkg/event"
)

// commitMessage is the recorder's debug message after each committed batch; its "count" field is
// the number of messages the batch acknowledged and "stream" the stream they came from.
const commitMessage = "batch committed"

// batchCounter adds up the recorder's committed batches.
type batchCounter struct {
	mu                  sync.Mutex
	eventBatches        int
	eventMessages       int
	logBatches, logMsgs int
	changed             chan struct{} // closed and replaced by every add; nil until waited on
}

func (b *batchCounter) add(stream string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	if stream == event.StreamLogs {
		b.logBatches++
		b.logMsgs += n
		return
	}
	b.eventBatches++
	b.eventMessages += n
}

// waitEvents waits until at least n event messages were counted since the last take, or until
// timeout. The recorder publishes a run's notice just before it logs the batch that committed it,
// so the last batch of a scenario may be logged a moment after its last notice arrived.
func (b *batchCounter) waitEvents(n int, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		b.mu.Lock()
		if b.eventMessages >= n {
			b.mu.Unlock()
			return
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// take returns the counts since the last take and resets them.
func (b *batchCounter) take() RecorderStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := RecorderStats{EventBatches: b.eventBatches, EventMessages: b.eventMessages, LogBatches: b.logBatches, LogMessages: b.logMsgs}
	b.eventBatches, b.eventMessages, b.logBatches, b.logMsgs = 0, 0, 0, 0
	return s
}

// commitTap is a zap core that passes everything to its inner core and, in addition, counts the
// recorder's "batch committed" entries (logged at debug level, whatever the inner core's level).
// It lets the benchmark read the recorder's batch sizes through the logger the in-process stack
// is given, without a hook in the stack.
type commitTap struct {
	inner   zapcore.Core
	counter *batchCounter
	fields  []zapcore.Field
}

func newCommitTap(inner zapcore.Core, counter *batchCounter) *commitTap {
	return &commitTap{inner: inner, counter: counter}
}

func (t *commitTap) Enabled(l zapcore.Level) bool { return l >= zapcore.DebugLevel }

func (t *commitTap) With(fields []zapcore.Field) zapcore.Core {
	return &commitTap{inner: t.inner.With(fields), counter: t.counter, fields: append(t.fields[:len(t.fields):len(t.fields)], fields...)}
}

func (t *commitTap) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if ent.Message == commitMessage && isRecorderLogger(ent.LoggerName) {
		ce = ce.AddCore(ent, t)
	}
	return t.inner.Check(ent, ce)
}

func (t *commitTap) Write(_ zapcore.Entry, fields []zapcore.Field) error {
	stream, n := "", -1
	for _, f := range append(t.fields[:len(t.fields):len(t.fields)], fields...) {
		switch {
		case f.Key == "stream" && f.Type == zapcore.StringType:
			stream = f.String
		case f.Key == "count" && (f.Type == zapcore.Int64Type || f.Type == zapcore.Int32Type):
			n = int(f.Integer)
		}
	}
	if n >= 0 {
		t.counter.add(stream, n)
	}
	return nil
}

func (t *commitTap) Sync() error { return t.inner.Sync() }

func isRecorderLogger(name string) bool {
	return name == "recorder" || strings.HasSuffix(name, ".recorder")
}

// recorderLogLine is the part of a JSON log line of ork-recorder the benchmark reads.
type recorderLogLine struct {
	TS     string `json:"ts"`
	Msg    string `json:"msg"`
	Stream string `json:"stream"`
	Count  *int   `json:"count"`
}

// logTimeLayout is zap's ISO8601 time encoding used by pkg/logging.
const logTimeLayout = "2006-01-02T15:04:05.000Z0700"

// batchesFromLog counts the batches an ork-recorder logged in path (JSON, debug level) between
// from and to. found is false when the log holds no "batch committed" line at all, which is the
// case when the recorder does not log at debug level.
func batchesFromLog(path string, from, to time.Time) (stats RecorderStats, found bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return RecorderStats{}, false, fmt.Errorf("reading recorder log: %w", err)
	}
	defer func() { _ = f.Close() }()
	var c batchCounter
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), commitMessage) {
			continue
		}
		var l recorderLogLine
		if json.Unmarshal(line, &l) != nil || l.Msg != commitMessage || l.Count == nil {
			continue
		}
		found = true
		ts, err := time.Parse(logTimeLayout, l.TS)
		if err != nil || ts.Before(from) || ts.After(to) {
			continue
		}
		c.add(l.Stream, *l.Count)
	}
	if err := sc.Err(); err != nil {
		return RecorderStats{}, found, fmt.Errorf("reading recorder log: %w", err)
	}
	return c.take(), found, nil
}
