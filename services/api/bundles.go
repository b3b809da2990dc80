package api

import (
	"net/http"
	"strconv"

	"github.com/ork-go/ork/pkg/bundle"
)

// putBundle stores a workflow bundle (pkg/bundle) under its hash, which must be the hash of the
// body: 201 when it is new, 200 when the store held it already.
func (s *Server) putBundle(w http.ResponseWriter, r *http.Request) {
	hash := r.PathValue("hash")
	if !bundle.ValidHash(hash) {
		writeProblem(w, r, probBadRequest, strconv.Quote(hash)+" is not a bundle name (the hex SHA-256 of the bundle)")
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if got := bundle.Hash(body); got != hash {
		writeProblem(w, r, probBadRequest, "the body hashes to "+got+", not to "+hash+": nothing was stored")
		return
	}
	existed, err := s.client.HasBundle(r.Context(), hash)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if _, err := s.client.PutBundle(r.Context(), body); err != nil {
		s.internal(w, r, err)
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]string{"bundle": hash})
}
