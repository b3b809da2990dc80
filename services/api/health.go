package api

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ork-go/ork/pkg/store"
)

//go:embed openapi.json
var openapiDoc []byte

// healthz answers while the process serves.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when NATS and the database are reachable, 503 naming what is not.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{"nats": "ok", "database": "ok"}
	ready := true
	if st := s.bus.NC.Status(); st != nats.CONNECTED {
		checks["nats"], ready = "not connected: "+st.String(), false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.store.RunList(ctx, store.RunListParams{Limit: 1}); err != nil {
		s.log.Warn("readiness: the database", zapErr(err))
		checks["database"], ready = "unreachable (the server's log says why)", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}

// openapi serves the OpenAPI 3.1 document of this API.
func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiDoc)
}
