package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/services/api/webui"
)

// route is one operation of the API: the OpenAPI test checks this table against the document.
type route struct {
	method, pattern string
	scope           Scope
	handle          func(*Server, http.ResponseWriter, *http.Request)
	stream          bool  // a long-lived event stream: no request deadline
	maxBody         int64 // the body cap of this route; 0: Config.MaxBodyBytes
}

// apiRoutes is every operation.
var apiRoutes = []route{
	{"GET", "/healthz", ScopePublic, (*Server).healthz, false, 0},
	{"GET", "/readyz", ScopePublic, (*Server).readyz, false, 0},
	{"GET", "/api/v1/openapi.json", ScopePublic, (*Server).openapi, false, 0},
	{"GET", "/api/v1/whoami", ScopeRead, (*Server).whoami, false, 0},

	{"GET", "/api/v1/workflows", ScopeRead, (*Server).listWorkflows, false, 0},
	{"GET", "/api/v1/workflows/{name}", ScopeRead, (*Server).getWorkflow, false, 0},
	{"PUT", "/api/v1/workflows/{name}", ScopeAdmin, (*Server).putWorkflow, false, 0},
	{"DELETE", "/api/v1/workflows/{name}", ScopeAdmin, (*Server).deleteWorkflow, false, 0},
	{"POST", "/api/v1/workflows/{name}/runs", ScopeSubmit, (*Server).triggerRun, false, 0},
	{method: "PUT", pattern: "/api/v1/bundles/{hash}", scope: ScopeAdmin, handle: (*Server).putBundle, maxBody: bundle.MaxBytesDefault},

	{"GET", "/api/v1/schedules", ScopeRead, (*Server).listSchedules, false, 0},
	{"GET", "/api/v1/schedules/{name}", ScopeRead, (*Server).getSchedule, false, 0},
	{"POST", "/api/v1/schedules/{name}/pause", ScopeSubmit, (*Server).pauseSchedule, false, 0},
	{"POST", "/api/v1/schedules/{name}/resume", ScopeSubmit, (*Server).resumeSchedule, false, 0},
	{"POST", "/api/v1/schedules/{name}/trigger", ScopeSubmit, (*Server).triggerSchedule, false, 0},
	{"POST", "/api/v1/schedules/{name}/backfill", ScopeSubmit, (*Server).backfillSchedule, false, 0},

	{"GET", "/api/v1/runs", ScopeRead, (*Server).listRuns, false, 0},
	{"GET", "/api/v1/runs/{id}", ScopeRead, (*Server).getRun, false, 0},
	{"POST", "/api/v1/runs/{id}/cancel", ScopeSubmit, (*Server).cancelRun, false, 0},
	{"POST", "/api/v1/runs/{id}/pause", ScopeSubmit, (*Server).pauseRun, false, 0},
	{"POST", "/api/v1/runs/{id}/resume", ScopeSubmit, (*Server).resumeRun, false, 0},
	{"POST", "/api/v1/runs/{id}/rerun", ScopeSubmit, (*Server).rerunRun, false, 0},
	{"GET", "/api/v1/runs/{id}/logs", ScopeRead, (*Server).runLogs, false, 0},
	{"GET", "/api/v1/runs/{id}/events", ScopeRead, (*Server).runEvents, true, 0},
	{"GET", "/api/v1/runs/{id}/logs/stream", ScopeRead, (*Server).runLogStream, true, 0},
	{"GET", "/api/v1/events", ScopeRead, (*Server).allEvents, true, 0},
}

// routes builds the handler: Go's routing patterns, then per route the token's scope, the rate
// limit, the body cap and the request deadline. Unknown paths and methods are problems too.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range apiRoutes {
		name := rt.method + " " + rt.pattern
		mux.HandleFunc(name, func(w http.ResponseWriter, r *http.Request) {
			begin := time.Now()
			sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
			w = sw
			defer func() { s.cfg.Metrics.observe(name, sw.code, rt.stream, time.Since(begin)) }()
			if rt.stream {
				defer s.cfg.Metrics.streamOpen()()
			}
			r, ok := s.authorize(w, r, rt.scope, rt.stream)
			if !ok {
				return
			}
			if rt.stream {
				release, ok := s.openStreams.take(limitKey(r))
				if !ok {
					w.Header().Set("Retry-After", "5")
					writeProblem(w, r, probRateLimited, "too many event streams open (at most "+strconv.Itoa(maxStreamsPerClient)+
						" per token, "+strconv.Itoa(maxStreams)+" in all): close some, or try again later")
					return
				}
				defer release()
			}
			if r.Body != nil {
				limit := s.cfg.MaxBodyBytes
				if rt.maxBody > 0 {
					limit = rt.maxBody
				}
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			if !rt.stream {
				rc := http.NewResponseController(w)
				_ = rc.SetReadDeadline(deadline(s.cfg.RequestTimeout))
				_ = rc.SetWriteDeadline(deadline(s.cfg.RequestTimeout))
			}
			rt.handle(s, w, r)
		})
	}
	// Everything else: under /api/ (and for the methods of routed paths) 404 or 405 as problems,
	// not Go's plain text; any other GET is the web UI's.
	ui := webui.Handler()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, rt := range apiRoutes {
			if rt.method != r.Method && matches(rt.pattern, r.URL.Path) {
				allowed = append(allowed, rt.method)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeProblem(w, r, probMethod, r.Method+" is not allowed on "+r.URL.Path+" (allowed: "+strings.Join(allowed, ", ")+")")
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			ui.ServeHTTP(w, r)
			return
		}
		writeProblem(w, r, probNotFound, "no such endpoint: "+r.URL.Path+" (the API is under /api/v1; /api/v1/openapi.json lists it)")
	})
	return mux
}

// matches tells whether path fits pattern, where {x} matches one non-empty segment.
func matches(pattern, path string) bool {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if p != xs[i] {
			return false
		}
	}
	return true
}

// statusWriter remembers the status an answer was given, for the metrics; it still streams.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets event streams flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Bounds of the event streams: each holds a JetStream consumer (two for a log stream), and the
// shipped servers allow 10,000 per stream.
const (
	maxStreams          = 4000
	maxStreamsPerClient = 100
)

// streamSlots counts the open streams, in all and per token (or client address).
type streamSlots struct {
	mu    sync.Mutex
	total int
	by    map[string]int
}

// take reserves a stream for key; release gives it back.
func (s *streamSlots) take(key string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]int{}
	}
	if s.total >= maxStreams || s.by[key] >= maxStreamsPerClient {
		return nil, false
	}
	s.total++
	s.by[key]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.total--
		if s.by[key]--; s.by[key] <= 0 {
			delete(s.by, key)
		}
	}, true
}

// limitKey is whom a request's limits count against: its token, or without tokens its
// client address.
func limitKey(r *http.Request) string {
	if t := principal(r.Context()); t.ID != "" && t.ID != "local" {
		return "token:" + t.ID
	}
	return "addr:" + clientAddr(r)
}
