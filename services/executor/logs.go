package executor

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

// outputPrefix starts the stdout line that carries a process task's output.
const outputPrefix = "ORK_OUTPUT:"

// Log shipping bounds, on top of the Config caps.
const (
	// logTailBytes bounds the tail of lines kept after LogMaxBytes is reached.
	logTailBytes = 64 << 10
	// logTailLines bounds the number of tail lines.
	logTailLines = 100
	// logPendingFactor times LogBatchLines is how many unshipped lines make writers wait.
	logPendingFactor = 16
	// logBatchMaxBytes bounds the line bytes of one batch, so that even escaped for JSON it stays
	// under the server's max payload (1 MiB by default).
	logBatchMaxBytes = 128 << 10
	// logTryTimeout bounds one try at publishing a batch. A try whose ack went down with the
	// connection is given up after it and the batch published again; its Nats-Msg-Id makes the
	// stream drop a second copy.
	logTryTimeout = 5 * time.Second
	// logRetryMin and logRetryMax bound the backoff between tries.
	logRetryMin = 100 * time.Millisecond
	logRetryMax = 2 * time.Second
)

// logSink numbers the lines of one attempt and ships them to ORK_LOGS in batches: after
// LogFlushInterval, or at once when LogBatchLines are waiting. Past LogMaxBytes it stops shipping,
// keeps a bounded tail, and on close ships a marker line and the tail. Writers wait while too many
// lines are unshipped, which stops reading the child's pipes: memory stays bounded.
//
// A batch the stream does not take (NATS down or restarting, an ack lost with the connection) is
// published again, one batch at a time and in seq order, with backoff, until the stream stores it or
// the executor is hard-stopped (stop is done). An outage therefore delays an attempt's lines, and
// through close its terminal event, but loses none of them: the recorder relies on every line being
// on ORK_LOGS before the attempt's terminal event is on ORK_EVENTS. Lines are lost only when the
// stream refuses a batch for good (full, or a message over its size limit) and at a hard stop, each
// time with a warning.
type logSink struct {
	b    *bus.Bus
	cfg  Config
	log  *zap.Logger
	hdr  event.LogBatch  // identity of the attempt; Lines unused
	stop context.Context // the executor's hard stop: give up shipping

	mu           sync.Mutex
	space        *sync.Cond
	pending      []event.LogLine
	seq          int64
	shipped      int64 // bytes of lines accepted for shipping
	dropped      int64 // lines dropped past LogMaxBytes
	droppedBytes int64
	tail         []event.LogLine
	tailBytes    int
	truncated    bool // LogMaxBytes was reached: every later line is dropped too
	closed       bool
	stopped      bool // stop is done: lines are no longer kept
	abandoned    int  // lines not shipped because of the hard stop

	kick       chan struct{} // first line of a batch
	full       chan struct{} // a full batch is waiting
	done       chan struct{}
	exit       chan struct{}
	unregister func() bool // of the hard stop callback
}

// newLogSink starts shipping the lines of the dispatch's attempt until close, or until stop is done.
func newLogSink(stop context.Context, b *bus.Bus, cfg Config, log *zap.Logger, d *event.Dispatch) *logSink {
	s := &logSink{
		b: b, cfg: cfg, log: log, stop: stop,
		hdr:  event.LogBatch{V: event.SchemaVersion, RunID: d.RunID, Task: d.Task.Name, Attempt: d.Attempt},
		kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		done: make(chan struct{}), exit: make(chan struct{}),
	}
	s.space = sync.NewCond(&s.mu)
	// A writer waiting for room must not wait for a stream that will never be reached again.
	s.unregister = context.AfterFunc(stop, func() {
		s.mu.Lock()
		s.stopped = true
		s.space.Broadcast()
		s.mu.Unlock()
	})
	go s.loop()
	return s
}

// add takes one line. It blocks while too many lines wait to be shipped.
func (s *logSink) add(stream, line string) {
	now := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.truncated || s.shipped+int64(len(line)) > s.cfg.LogMaxBytes {
		// Count what is dropped and keep the last lines, within bounds.
		s.truncated = true
		s.dropped++
		s.droppedBytes += int64(len(line))
		s.tail = append(s.tail, event.LogLine{Stream: stream, Line: line, Time: now})
		s.tailBytes += len(line)
		for len(s.tail) > logTailLines || (s.tailBytes > logTailBytes && len(s.tail) > 1) {
			s.tailBytes -= len(s.tail[0].Line)
			s.tail[0] = event.LogLine{}
			s.tail = s.tail[1:]
		}
		return
	}
	for len(s.pending) >= logPendingFactor*s.cfg.LogBatchLines && !s.closed && !s.stopped {
		s.space.Wait()
	}
	if s.stopped {
		s.abandoned++
		return
	}
	s.shipped += int64(len(line))
	s.seq++
	s.pending = append(s.pending, event.LogLine{Seq: s.seq, Stream: stream, Line: line, Time: now})
	switch len(s.pending) {
	case 1:
		poke(s.kick)
	case s.cfg.LogBatchLines:
		poke(s.full)
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// loop ships batches until close.
func (s *logSink) loop() {
	defer close(s.exit)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.kick:
		case <-s.full:
		case <-s.done:
			s.flush()
			return
		}
		timer.Reset(s.cfg.LogFlushInterval)
		select {
		case <-timer.C:
		case <-s.full:
			timer.Stop()
		case <-s.done:
			timer.Stop()
		}
		s.flush()
	}
}

// flush ships every pending line, in batches of at most LogBatchLines and logBatchMaxBytes, each
// batch once the one before it is stored.
func (s *logSink) flush() {
	s.mu.Lock()
	lines := s.pending
	s.pending = nil
	s.space.Broadcast()
	s.mu.Unlock()
	for len(lines) > 0 {
		n, size := 0, 0
		for n < len(lines) && n < s.cfg.LogBatchLines && (n == 0 || size+len(lines[n].Line) <= logBatchMaxBytes) {
			size += len(lines[n].Line)
			n++
		}
		if !s.ship(lines[:n]) {
			s.mu.Lock()
			s.abandoned += len(lines)
			s.mu.Unlock()
			return
		}
		lines = lines[n:]
	}
}

// ship publishes one batch, trying again with backoff until the stream stores it. It returns false
// when the executor was hard-stopped first. A batch the stream refuses for good is reported lost and
// dropped: waiting for an operator would stall every running attempt.
func (s *logSink) ship(lines []event.LogLine) bool {
	lb := s.hdr
	lb.Lines = lines
	msg, err := bus.LogMsg(&lb)
	if err != nil {
		s.lost(len(lines), err)
		return true
	}
	if int64(len(msg.Data)) > s.b.NC.MaxPayload() && len(lines) > 1 {
		// Escaping made the batch too large for the server: ship it in halves.
		return s.ship(lines[:len(lines)/2]) && s.ship(lines[len(lines)/2:])
	}
	wait := logRetryMin
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(s.stop, logTryTimeout)
		err := s.b.Publish(ctx, msg)
		cancel()
		switch {
		case err == nil:
			if try > 1 {
				s.log.Info("log lines shipped after a retry", s.fields(len(lines), zap.Int("tries", try))...)
			}
			return true
		case s.stop.Err() != nil:
			return false
		case bus.RefusedForGood(err):
			s.lost(len(lines), err)
			return true
		case try == 1:
			s.log.Warn("shipping log lines; trying again until the logs stream takes them", s.fields(len(lines), zap.Error(err))...)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.stop.Done():
			t.Stop()
		}
		wait = min(2*wait, logRetryMax)
	}
}

func (s *logSink) lost(n int, err error) {
	s.log.Warn("log lines lost", s.fields(n, zap.Error(err))...)
}

func (s *logSink) fields(n int, extra ...zap.Field) []zap.Field {
	return append([]zap.Field{logging.RunID(s.hdr.RunID), logging.Task(s.hdr.Task), logging.Attempt(s.hdr.Attempt), logging.Count(n)}, extra...)
}

// close ships what is left, the truncation marker and the tail, and waits until the stream has
// stored them, or until the hard stop.
func (s *logSink) close() {
	s.mu.Lock()
	s.closed = true
	s.space.Broadcast()
	if s.truncated {
		now := time.Now().UTC()
		marker := fmt.Sprintf("[ork: log truncated: over %s per attempt, %d lines (%s) were not shipped; the last %d follow]",
			formatBytes(s.cfg.LogMaxBytes), s.dropped-int64(len(s.tail)), formatBytes(s.droppedBytes-int64(s.tailBytes)), len(s.tail))
		s.seq++
		s.pending = append(s.pending, event.LogLine{Seq: s.seq, Stream: event.Stderr, Line: marker, Time: now})
		for _, l := range s.tail {
			s.seq++
			l.Seq = s.seq
			s.pending = append(s.pending, l)
		}
		s.tail = nil
	}
	s.mu.Unlock()
	close(s.done)
	<-s.exit
	s.unregister()
	s.mu.Lock()
	abandoned := s.abandoned
	s.mu.Unlock()
	if abandoned > 0 {
		s.log.Warn("log lines lost: the executor was stopped before they were shipped", s.fields(abandoned)...)
	}
}

// lineWriter splits one stream of a child into lines for a logSink, cutting lines longer than
// LogLineMaxBytes. On stdout it also captures the last ORK_OUTPUT line, up to OutputMaxBytes.
// exec.Cmd copies the pipe into it from one goroutine; finish is called after Wait.
type lineWriter struct {
	stream  string
	sink    *logSink
	maxLine int

	capture bool // look for ORK_OUTPUT lines
	maxOut  int

	line    []byte // the start of the current line, at most maxLine bytes
	lineLen int    // bytes seen of the current line
	isOut   int8   // 0 undecided, 1 an output line, -1 not
	out     []byte // the current output line's JSON, at most maxOut+1 bytes

	// The last complete output line.
	output    []byte
	hasOutput bool
	outputCut bool // over maxOut

	last string // the last non-empty line, shortened, for error messages
}

// lastLineMax bounds lineWriter.last.
const lastLineMax = 300

func newLineWriter(stream string, sink *logSink, cfg Config, capture bool) *lineWriter {
	return &lineWriter{stream: stream, sink: sink, maxLine: cfg.LogLineMaxBytes, capture: capture, maxOut: cfg.OutputMaxBytes}
}

// Write implements io.Writer.
func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.take(p)
			break
		}
		w.take(p[:i])
		w.endLine()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) take(chunk []byte) {
	w.lineLen += len(chunk)
	room := w.maxLine - len(w.line)
	kept := min(room, len(chunk))
	w.line = append(w.line, chunk[:kept]...)
	if !w.capture {
		return
	}
	switch w.isOut {
	case 0:
		if len(w.line) < len(outputPrefix) {
			return
		}
		if !bytes.HasPrefix(w.line, []byte(outputPrefix)) {
			w.isOut = -1
			return
		}
		w.isOut = 1
		w.out = w.out[:0]
		w.appendOut(w.line[len(outputPrefix):])
		w.appendOut(chunk[kept:])
	case 1:
		w.appendOut(chunk)
	}
}

func (w *lineWriter) appendOut(b []byte) {
	room := w.maxOut + 1 - len(w.out)
	w.out = append(w.out, b[:min(room, len(b))]...)
}

func (w *lineWriter) endLine() {
	if w.isOut == 1 {
		w.hasOutput = true
		w.outputCut = len(w.out) > w.maxOut
		w.output = append(w.output[:0], bytes.TrimSuffix(w.out, []byte("\r"))...)
	}
	line := w.line
	if len(line) > 0 && line[len(line)-1] == '\r' && w.lineLen == len(line) {
		line = line[:len(line)-1]
	}
	text := string(line)
	if w.lineLen > len(w.line) {
		text += " [ork: line cut at " + formatBytes(int64(w.maxLine)) + ", " + strconv.Itoa(w.lineLen-len(w.line)) + " more bytes dropped]"
	}
	if len(bytes.TrimSpace(line)) > 0 {
		w.last = shorten(string(bytes.TrimSpace(line)), lastLineMax)
	}
	w.sink.add(w.stream, text)
	w.line = w.line[:0]
	w.lineLen = 0
	w.isOut = 0
}

// finish ends a last line that had no newline.
func (w *lineWriter) finish() {
	if w.lineLen > 0 {
		w.endLine()
	}
}

// formatBytes prints a size the way a user reads it.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// shorten cuts s to at most n bytes, on a rune boundary, marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
