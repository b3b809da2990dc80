package api

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// ctxT shortens the signatures of the client's control steps.
type ctxT = context.Context

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func deadline(d time.Duration) time.Time { return time.Now().Add(d) }

func zapPath(r *http.Request) zap.Field { return zap.String("path", r.Method+" "+r.URL.Path) }

func zapErr(err error) zap.Field { return zap.Error(err) }
