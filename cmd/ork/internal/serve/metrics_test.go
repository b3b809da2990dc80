package serve_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/services/api"
)

// The API counts its answers by route and status, times them (event streams aside), and counts the
// streams open now.
func TestAPIMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := start(t, api.Config{Metrics: api.NewMetrics(reg)})
	s.want(s.do("PUT", "/api/v1/workflows/hello", readExample(t, "hello.yaml")), http.StatusCreated)
	s.want(s.do("GET", "/api/v1/workflows/nope", nil), http.StatusNotFound)
	s.want(s.do("GET", "/api/v1/workflows/nope", nil), http.StatusNotFound)
	s.triggerDone("hello") // its events stream was open, and is closed again
	// The server ends its side of the stream a moment after the client has read its end.
	poll.UntilWithin(t, 10*time.Second, "the stream's handler to return", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			return false
		}
		for _, mf := range mfs {
			if mf.GetName() == "ork_api_open_streams" {
				return mf.GetMetric()[0].GetGauge().GetValue() == 0
			}
		}
		return false
	})
	const want = `
# HELP ork_api_requests_total Requests answered, by route (the method and pattern of the operation) and status code.
# TYPE ork_api_requests_total counter
ork_api_requests_total{code="200",route="GET /api/v1/runs/{id}"} 1
ork_api_requests_total{code="200",route="GET /api/v1/runs/{id}/events"} 1
ork_api_requests_total{code="201",route="POST /api/v1/workflows/{name}/runs"} 1
ork_api_requests_total{code="201",route="PUT /api/v1/workflows/{name}"} 1
ork_api_requests_total{code="404",route="GET /api/v1/workflows/{name}"} 2
# HELP ork_api_open_streams Event and log streams open now.
# TYPE ork_api_open_streams gauge
ork_api_open_streams 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ork_api_requests_total", "ork_api_open_streams"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "ork_api_request_seconds"); n != 4 {
		t.Errorf("%d request_seconds series, want one per route answered but the stream", n)
	}
}
