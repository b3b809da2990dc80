package api

import (
	"encoding/json"
	"net/http"

	"github.com/ork-go/ork/pkg/httpapi"
)

// Problem kinds: the slug of the type, and the status it comes with.
var (
	probBadRequest   = problemKind{"bad-request", http.StatusBadRequest}
	probInvalid      = problemKind{"invalid-workflow", http.StatusBadRequest}
	probParams       = problemKind{"invalid-params", http.StatusBadRequest}
	probUnauthorized = problemKind{"unauthorized", http.StatusUnauthorized}
	probForbidden    = problemKind{"forbidden", http.StatusForbidden}
	probNotFound     = problemKind{"not-found", http.StatusNotFound}
	probMethod       = problemKind{"method-not-allowed", http.StatusMethodNotAllowed}
	probConflict     = problemKind{"conflict", http.StatusConflict}
	probTooLarge     = problemKind{"too-large", http.StatusRequestEntityTooLarge}
	probRateLimited  = problemKind{"rate-limited", http.StatusTooManyRequests}
	probUnavailable  = problemKind{"unavailable", http.StatusServiceUnavailable}
	probInternal     = problemKind{"internal", http.StatusInternalServerError}
)

type problemKind struct {
	slug   string
	status int
}

// writeProblem writes a problem of kind k with detail.
func writeProblem(w http.ResponseWriter, r *http.Request, k problemKind, detail string) {
	writeProblemValue(w, r, httpapi.Problem{Type: httpapi.ProblemTypeBase + k.slug, Title: http.StatusText(k.status), Status: k.status, Detail: detail})
}

func writeProblemValue(w http.ResponseWriter, r *http.Request, p httpapi.Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
