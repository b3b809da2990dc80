package serve_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenAPI document is checked against real answers: every answer a test of this package gets
// from a documented operation must be a documented status, and its body must follow the documented
// schema (problems included).

var openapiPath, _ = filepath.Abs(filepath.Join("..", "..", "..", "..", "services", "api", "openapi.json"))

type contract struct {
	doc     map[string]any
	c       *jsonschema.Compiler
	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
}

var (
	contractOnce sync.Once
	theContract  *contract
	contractErr  error
)

func loadContract() (*contract, error) {
	contractOnce.Do(func() {
		data, err := os.ReadFile(openapiPath)
		if err != nil {
			contractErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			contractErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource("file://"+openapiPath, doc); err != nil {
			contractErr = err
			return
		}
		theContract = &contract{doc: doc.(map[string]any), c: c, schemas: map[string]*jsonschema.Schema{}}
	})
	return theContract, contractErr
}

// pointerEscape escapes a JSON pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// operation finds the documented path pattern of method and path, if any.
func (c *contract) operation(method, path string) (pattern string, op map[string]any) {
	paths := c.doc["paths"].(map[string]any)
	for p, ops := range paths {
		if !pathMatches(p, path) {
			continue
		}
		if o, ok := ops.(map[string]any)[strings.ToLower(method)]; ok {
			return p, o.(map[string]any)
		}
	}
	return "", nil
}

func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// check validates one answer; it reports nothing for undocumented paths (the router test covers them).
func (c *contract) check(t *testing.T, method, rawPath string, status int, contentType string, body []byte) {
	t.Helper()
	path, _, _ := strings.Cut(rawPath, "?")
	pattern, op := c.operation(method, path)
	if op == nil {
		return
	}
	responses := op["responses"].(map[string]any)
	resp, ok := responses[strconv.Itoa(status)].(map[string]any)
	if !ok {
		t.Errorf("%s %s answered %d, which openapi.json does not document (%v)", method, pattern, status, keys(responses))
		return
	}
	ptr := "#/paths/" + pointerEscape(pattern) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := strings.TrimPrefix(ref, "#/components/responses/")
		resp = c.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	content, _ := resp["content"].(map[string]any)
	if content == nil {
		return
	}
	mediaType, _, _ := strings.Cut(contentType, ";")
	if _, ok := content[mediaType]; !ok {
		t.Errorf("%s %s %d: Content-Type %q, documented %v", method, pattern, status, contentType, keys(content))
		return
	}
	if mediaType == "text/event-stream" || mediaType == "application/yaml" {
		return
	}
	loc := "file://" + openapiPath + ptr + "/content/" + pointerEscape(mediaType) + "/schema"
	c.mu.Lock()
	sch, ok := c.schemas[loc]
	if !ok {
		var err error
		if sch, err = c.c.Compile(loc); err != nil {
			c.mu.Unlock()
			t.Fatalf("compiling %s: %v", loc, err)
		}
		c.schemas[loc] = sch
	}
	c.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s %d: the body is not JSON: %v", method, pattern, status, err)
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %s %d: the body does not follow openapi.json: %v\n%s", method, pattern, status, err, body)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// checkResponse validates an answer of the server against the contract.
func (s *server) checkResponse(method, path string, res *http.Response, body []byte) {
	s.t.Helper()
	c, err := loadContract()
	if err != nil {
		s.t.Fatalf("openapi.json: %v", err)
	}
	c.check(s.t, method, path, res.StatusCode, res.Header.Get("Content-Type"), body)
}

// The document is valid JSON with the OpenAPI 3.1 top level.
func TestContractLoads(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	var top struct{ OpenAPI string }
	data, _ := json.Marshal(c.doc)
	if err := json.Unmarshal(data, &top); err != nil || top.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q %v", top.OpenAPI, err)
	}
}
