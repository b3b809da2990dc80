package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
)

// Environment variables of the API connection.
const (
	envAPIURL   = "ORK_API_URL"
	envAPIToken = "ORK_API_TOKEN"
)

// apiFlags are a command's connection to a server: --api and its token.
type apiFlags struct {
	url, token string
}

func addAPIFlags(cmd *cobra.Command, a *apiFlags) {
	cmd.Flags().StringVar(&a.url, "api", "", "the Ork server's URL, e.g. http://127.0.0.1:4000 (env "+envAPIURL+"; default: the `ork serve` running in this folder, if any)")
	cmd.Flags().StringVar(&a.token, "token", "", "the API token (env "+envAPIToken+", which keeps it out of the process list)")
}

// server is the API to talk to: --api or ORK_API_URL, else the `ork serve` of this folder (its
// .ork/serve.json, when it answers). It returns nil when there is none; info is the discovered
// server's (nil for an explicit URL).
func (a *apiFlags) server(ctx context.Context) (*httpapi.Client, *serve.Info, error) {
	token := resolve(a.token, envAPIToken, "")
	if u := resolve(a.url, envAPIURL, ""); u != "" {
		return httpapi.NewClient(u, token), nil, nil
	}
	info, ok := serve.ReadInfo(embedded.DataDirDefault)
	if !ok {
		return nil, nil, nil
	}
	c := httpapi.NewClient(info.API, token)
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if c.Health(hctx) != nil {
		return nil, nil, nil // a file left by a server that is gone
	}
	return c, &info, nil
}

// stackFlags are where a command goes when there is no server: a cluster (--nats), or this
// folder's embedded stack, started for the command.
type stackFlags struct {
	nats natsFlags
}

// openBus connects to the cluster of --nats, or starts this folder's embedded stack; close ends it.
// st is the embedded stack's database (nil for a cluster).
func (f *stackFlags) openBus(ctx context.Context, verbose bool) (b *bus.Bus, st store.Store, where string, closeFn func(), err error) {
	natsURL, err := f.nats.URL()
	if err != nil {
		return nil, nil, "", nil, err
	}
	log := quietLogger(verbose)
	if natsURL == "" {
		stk, err := embedded.Start(ctx, embedded.Config{}, log)
		if err != nil {
			return nil, nil, "", nil, err
		}
		dir, _ := filepath.Abs(embedded.DataDirDefault)
		return stk.Bus, stk.Store, "this folder's registry (" + dir + ")", func() { _ = stk.Stop(); _ = log.Sync() }, nil
	}
	cfg, err := f.nats.config(natsURL, "ork-cli")
	if err != nil {
		return nil, nil, "", nil, err
	}
	if b, err = bus.Connect(cfg, log.Named("bus")); err != nil {
		return nil, nil, "", nil, err
	}
	if err := b.Ensure(ctx); err != nil {
		b.Close()
		return nil, nil, "", nil, err
	}
	return b, nil, "the cluster at " + natsURL, func() { b.Close(); _ = log.Sync() }, nil
}

// serverDir is a workflow folder as the server sees it: relative to the discovered server's
// workflows root (it must lie inside), or to the working directory for a server given by URL.
func serverDir(info *serve.Info, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root := ""
	if info != nil {
		root = info.WorkflowsRoot
	} else if root, err = os.Getwd(); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return "", fmt.Errorf("the workflow's folder %s is outside the server's workflows root %s: start ork serve from a folder that holds it (or with --workflows-root)", abs, root)
	}
	return rel, nil
}

var errNoServer = errors.New("no server")

// apiRuns finds runs through a server's API.
type apiRuns struct{ api *httpapi.Client }

func (a apiRuns) exists(ctx context.Context, id string) (bool, error) {
	_, err := a.api.Run(ctx, id)
	if httpapi.IsProblem(err, "not-found") {
		return false, nil
	}
	return err == nil, err
}

func (a apiRuns) newest(ctx context.Context, prefix string, limit int) ([]store.Run, error) {
	page, err := a.api.Runs(ctx, httpapi.RunsQuery{IDPrefix: prefix, PageSize: limit})
	if err != nil {
		return nil, err
	}
	out := make([]store.Run, len(page.Runs))
	for i, r := range page.Runs {
		out[i] = store.Run{ID: r.RunID, Workflow: r.Workflow, CreatedAt: r.CreatedAt}
	}
	return out, nil
}

func (a apiRuns) where() string { return "the server at " + a.api.Base() }
