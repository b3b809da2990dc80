package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
)

// Live events are Server-Sent Events read from the ORK_EVENTS stream: the stream sequence is each
// event's id, so a client that reconnects with Last-Event-ID (browsers do it by themselves) resumes
// after the last event it got, with no gap and no repeat.

// heartbeatInterval is how often an idle stream sends a comment, so proxies keep it open and a
// dead client is noticed.
const heartbeatInterval = 15 * time.Second

// runEvents streams one run's events and ends with its run.finished, sent once the database has
// it too (so that a client reading the run then reads its end).
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, ok := lastEventID(w, r)
	if !ok {
		return
	}
	known, ended := s.runKnown(w, r, id)
	if !known {
		return
	}
	// An ended run's stream also ends once what is stored has been sent: its run.finished may be
	// behind the client (a resume) or gone with the stream's MaxAge.
	s.stream(w, r, client.FollowParams{RunID: id, AfterSeq: after, UntilCaughtUp: ended}, true)
}

// allEvents streams the events of every run (run.submitted without its plan) until the client
// goes away.
func (s *Server) allEvents(w http.ResponseWriter, r *http.Request) {
	after, ok := lastEventID(w, r)
	if !ok {
		return
	}
	// From now on, unless the client resumes: a new subscriber wants what happens, not the whole
	// retained history.
	s.stream(w, r, client.FollowParams{AfterSeq: after, FromNow: after == 0}, false)
}

// recordedWait bounds how long a run's stream waits, after run.finished, for the database.
const recordedWait = 10 * time.Second

// awaitRecorded returns once the run's end is in the database: at once when it is already there
// (a stream of a run that ended long ago), else at the recorder's notice, or after recordedWait.
func (s *Server) awaitRecorded(ctx context.Context, runID string, rec *client.Recorded) {
	if run, err := s.store.RunGet(ctx, store.RunGetParams{ID: runID}); err == nil && event.IsTerminalRun(run.Status) {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, recordedWait)
	defer cancel()
	_, _ = rec.Wait(wctx)
}

// lastEventID reads where to resume: the Last-Event-ID header, or the last_event_id query
// parameter (for clients that cannot set headers).
func lastEventID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeProblem(w, r, probBadRequest, "Last-Event-ID must be the id of an event this server sent, got "+strconv.Quote(v))
		return 0, false
	}
	return n, true
}

// stream writes a run's events (or every run's) as they come. With untilFinished it ends after
// run.finished, once the database has it.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, p client.FollowParams, untilFinished bool) {
	// The recorder's notice is watched before the first event, so it cannot be missed.
	var recorded *client.Recorded
	if untilFinished {
		var err error
		if recorded, err = s.client.WatchRecorded(p.RunID); err != nil {
			writeProblem(w, r, probUnavailable, err.Error())
			return
		}
		defer func() { _ = recorded.Close() }()
	}
	pump(s, w, r, func(ctx context.Context, ready func(), emit func(event.Event) error) error {
		p.Ready = ready
		return s.client.FollowFrom(ctx, p, emit)
	}, func(ctx context.Context, e event.Event) (sseMsg, bool) {
		if e.Type == event.TypeRunSubmitted {
			e.Plan, e.Reuse = nil, nil // the list of runs needs who and what, not the whole workflow
		}
		data, err := json.Marshal(&e)
		if err != nil {
			return sseMsg{}, false
		}
		end := untilFinished && e.Type == event.TypeRunFinished
		if end {
			// Sent once the database has it, so a client that reads the run on seeing it sees it.
			s.awaitRecorded(ctx, p.RunID, recorded)
		}
		return sseMsg{id: e.Seq, name: e.Type, data: data, last: end}, true
	})
}

// sseMsg is one Server-Sent Event; last ends the stream after it.
type sseMsg struct {
	id   uint64
	name string
	data []byte
	last bool
}

// pump runs follow, which calls ready once it has started and then emits items, and writes each as
// an event (encode says what it is, or false to skip it), with a heartbeat while idle, until follow
// ends, an item is the last, the client goes away or the server shuts down. A follow that cannot
// start (the server refuses its consumer) is a 503 before anything is streamed.
func pump[T any](s *Server, w http.ResponseWriter, r *http.Request, follow func(ctx context.Context, ready func(), emit func(T) error) error,
	encode func(context.Context, T) (sseMsg, bool)) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeProblem(w, r, probInternal, "this connection cannot stream")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stopOnShutdown := context.AfterFunc(s.streams, cancel)
	defer stopOnShutdown()

	items := make(chan T, 16) // a few in flight per stream: a thousand streams stay small
	followErr := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		defer close(items)
		followErr <- follow(ctx, func() { close(started) }, func(it T) error {
			select {
			case items <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	select {
	case <-started:
	case err := <-followErr:
		select {
		case <-started: // it started, then ended: stream what it emitted
			followErr <- err
			goto stream
		default:
		}
		if ctx.Err() == nil {
			s.log.Warn("event stream could not start", zapPath(r), zapErr(err))
			writeProblem(w, r, probUnavailable, "the event stream could not start; try again later")
		}
		return
	case <-ctx.Done():
		return
	}

stream:
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	flusher.Flush()

	rc := http.NewResponseController(w)
	// A client that stops reading is dropped: every write must be done within two heartbeats.
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * heartbeatInterval)) }
	beat := time.NewTicker(heartbeatInterval)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			deadline()
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case it, open := <-items:
			if !open {
				err := <-followErr
				if err != nil && ctx.Err() == nil {
					s.log.Warn("event stream ended", zapPath(r), zapErr(err))
				}
				if err == nil {
					endStream(w, flusher)
				}
				return
			}
			m, ok := encode(ctx, it)
			if !ok || !eventName(m.name) {
				continue
			}
			deadline()
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.id, m.name, m.data); err != nil {
				return
			}
			flusher.Flush()
			if m.last {
				endStream(w, flusher)
				return
			}
		}
	}
}

// runLogStream streams a run's log batches (of one task with ?task=) as events named "log", the
// ORK_LOGS sequence as id: those stored so far, then the new ones as the tasks print them. It ends
// once the run has ended and every line has been sent.
func (s *Server) runLogStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	after, ok := lastEventID(w, r)
	if !ok {
		return
	}
	known, ended := s.runKnown(w, r, id)
	if !known {
		return
	}
	type batch struct {
		seq uint64
		b   event.LogBatch
	}
	task := r.URL.Query().Get("task")
	pump(s, w, r, func(ctx context.Context, ready func(), emit func(batch) error) error {
		return s.client.FollowLogs(ctx, client.LogsParams{RunID: id, Task: task, AfterSeq: after, Ready: ready, Ended: ended},
			func(seq uint64, b event.LogBatch) error { return emit(batch{seq, b}) })
	}, func(_ context.Context, b batch) (sseMsg, bool) {
		data, err := json.Marshal(&b.b)
		return sseMsg{id: b.seq, name: "log", data: data}, err == nil
	})
}

// endStream sends the event that ends a finite stream: the client knows it is complete and does
// not reconnect.
func endStream(w http.ResponseWriter, flusher http.Flusher) {
	_, _ = fmt.Fprint(w, "event: "+httpapi.EndEvent+"\ndata: {}\n\n")
	flusher.Flush()
}

// runKnown answers the problem itself unless the run is in the database or, triggered a moment
// ago, known to the cluster; ended says the database has its end.
func (s *Server) runKnown(w http.ResponseWriter, r *http.Request, id string) (known, ended bool) {
	run, err := s.store.RunGet(r.Context(), store.RunGetParams{ID: id})
	switch {
	case err == nil:
		return true, event.IsTerminalRun(run.Status)
	case !errors.Is(err, store.ErrNotFound):
		s.log.Warn("reading a run", zapPath(r), zapErr(err))
		writeProblem(w, r, probUnavailable, "the database cannot be read right now; try again later")
		return false, false
	}
	if known, kerr := s.client.Known(r.Context(), id, client.KnownWithinDefault); kerr != nil || !known {
		writeProblem(w, r, probNotFound, "no run "+strconv.Quote(id))
		return false, false
	}
	return true, false
}

// eventName reports whether an event's type may name an SSE event: a type travels from the
// network, and a line break in it would let a publisher forge events for every client.
func eventName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
