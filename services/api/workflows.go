package api

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// Paging bounds.
const (
	pageSizeDefault = 50
	pageSizeMax     = 500
)

// pageSize reads page_size.
func pageSize(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("page_size")
	if v == "" {
		return pageSizeDefault, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > pageSizeMax {
		writeProblem(w, r, probBadRequest, "page_size must be a whole number from 1 to "+strconv.Itoa(pageSizeMax)+", got "+strconv.Quote(v))
		return 0, false
	}
	return n, true
}

// nameToken reads the page_token of a list by name (the base64 of the last name of the page
// before); it answers 400 and returns false for one this server did not give.
func nameToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok := r.URL.Query().Get("page_token")
	if tok == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		writeProblem(w, r, probBadRequest, "page_token is not one this server gave")
		return "", false
	}
	return string(b), true
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) {
	size, ok := pageSize(w, r)
	if !ok {
		return
	}
	after, ok := nameToken(w, r)
	if !ok {
		return
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	all, err := s.client.Workflows(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := httpapi.WorkflowList{Workflows: []httpapi.WorkflowSummary{}}
	for _, reg := range all { // by name
		name := reg.Plan.Name
		if name <= after || (q != "" && !strings.Contains(strings.ToLower(name), q)) {
			continue
		}
		if len(out.Workflows) == size {
			out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(out.Workflows[size-1].Name))
			break
		}
		out.Workflows = append(out.Workflows, httpapi.SummaryOf(reg))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) {
	reg, err := s.client.Workflow(r.Context(), r.PathValue("name"))
	if errors.Is(err, client.ErrNotRegistered) {
		writeProblem(w, r, probNotFound, "no registered workflow "+strconv.Quote(r.PathValue("name"))+" (GET /api/v1/workflows lists them)")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d := httpapi.DetailOf(reg)
	versions, err := s.store.WorkflowVersionList(r.Context(), store.WorkflowVersionListParams{Workflow: reg.Plan.Name, Limit: 100})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	current := false
	for _, v := range versions {
		d.Versions = append(d.Versions, httpapi.Version{Version: v.Hash, CreatedAt: v.CreatedAt})
		current = current || v.Hash == reg.Plan.Hash
	}
	if !current { // registered a moment ago: the recorder has not mirrored it yet
		d.Versions = append([]httpapi.Version{{Version: reg.Plan.Hash, CreatedAt: reg.AppliedAt}}, d.Versions...)
	}
	writeJSON(w, http.StatusOK, d)
}

// putWorkflow registers the YAML body under {name}. With ?bundle=HASH (a bundle stored with PUT
// /bundles/{hash}) the workflow's folder is that bundle: its files are checked there and the runs
// take it to the executors; dir then only records where it was packed. Without, dir is the
// workflow's folder relative to the server's workflows root: task files resolve there, on the
// server and on the executors.
func (s *Server) putWorkflow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var dir, hash string
	if hash = q.Get("bundle"); hash != "" {
		tmp, ok := s.unpackBundle(w, r, hash)
		if !ok {
			return
		}
		defer os.RemoveAll(tmp)
		dir = filepath.Join(tmp, "b")
	} else {
		rel := q.Get("dir")
		if rel == "" {
			rel = "."
		}
		if !filepath.IsLocal(rel) && rel != "." {
			writeProblem(w, r, probBadRequest, "dir must be a relative folder inside the server's workflows root, got "+strconv.Quote(rel))
			return
		}
		dir = filepath.Join(s.cfg.WorkflowsRoot, rel)
	}
	plan, err := workflow.Parse(name+".yaml", body, dir)
	if err != nil {
		var list workflow.ErrorList
		if errors.As(err, &list) {
			writeProblemValue(w, r, httpapi.Problem{Type: httpapi.ProblemTypeBase + probInvalid.slug, Title: http.StatusText(probInvalid.status),
				Status: probInvalid.status, Detail: "the workflow is invalid: " + strconv.Itoa(len(list)) + " error(s); nothing was registered", Errors: list})
			return
		}
		writeProblem(w, r, probInvalid, err.Error())
		return
	}
	if plan.Name != name {
		writeProblemValue(w, r, httpapi.Problem{Type: httpapi.ProblemTypeBase + probInvalid.slug, Title: http.StatusText(probInvalid.status), Status: probInvalid.status,
			Detail: "the workflow is named " + strconv.Quote(plan.Name) + ", not " + strconv.Quote(name) + " as in the URL; nothing was registered",
			Errors: []*workflow.Error{{File: name + ".yaml", Path: "name", Message: "name " + strconv.Quote(plan.Name) + " does not match the URL's " + strconv.Quote(name)}}})
		return
	}
	if hash != "" {
		if plan, err = plan.WithBundle(hash); err != nil {
			s.internal(w, r, err)
			return
		}
		plan.Dir = q.Get("dir") // where it was packed, for people; the executors use the bundle
	}
	_, prevErr := s.client.Workflow(r.Context(), name)
	reg, changed, err := s.client.Apply(r.Context(), client.ApplyParams{Plan: plan, By: "api:" + principal(r.Context()).Name, Source: string(body)})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	status := http.StatusOK
	if changed && errors.Is(prevErr, client.ErrNotRegistered) {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/workflows/"+name)
	}
	writeJSON(w, status, httpapi.DetailOf(reg))
}

func (s *Server) deleteWorkflow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.client.Unregister(r.Context(), name)
	if errors.Is(err, client.ErrNotRegistered) {
		writeProblem(w, r, probNotFound, "no registered workflow "+strconv.Quote(name))
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, httpapi.Deleted{Deleted: name})
}

// readBody reads the whole (capped) body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeProblem(w, r, probTooLarge, "the body is over the limit of "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		return nil, false
	}
	if err != nil {
		writeProblem(w, r, probBadRequest, "reading the body: "+err.Error())
		return nil, false
	}
	return body, true
}

// internal answers 500 without the details, which go to the log.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", zapPath(r), zapErr(err))
	writeProblem(w, r, probInternal, "the server could not do this; its log says why")
}

// unpackBundle fetches a stored bundle into a fresh temporary folder (its files in tmp/b), or
// answers the problem itself.
func (s *Server) unpackBundle(w http.ResponseWriter, r *http.Request, hash string) (string, bool) {
	if !bundle.ValidHash(hash) {
		writeProblem(w, r, probBadRequest, "bundle "+strconv.Quote(hash)+" is not a bundle name")
		return "", false
	}
	data, err := s.client.GetBundle(r.Context(), hash)
	if errors.Is(err, client.ErrNoBundle) {
		writeProblem(w, r, probBadRequest, "no bundle "+hash+": store it first with PUT /api/v1/bundles/"+hash)
		return "", false
	}
	if err != nil {
		s.internal(w, r, err)
		return "", false
	}
	tmp, err := os.MkdirTemp("", "ork-api-bundle-")
	if err != nil {
		s.internal(w, r, err)
		return "", false
	}
	if err := bundle.Unpack(data, hash, filepath.Join(tmp, "b"), 0); err != nil {
		_ = os.RemoveAll(tmp)
		writeProblem(w, r, probBadRequest, err.Error())
		return "", false
	}
	return tmp, true
}
