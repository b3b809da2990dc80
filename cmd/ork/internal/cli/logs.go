package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

// logsFollow are the settings of `ork logs -f`.
type logsFollow struct {
	api     *apiFlags
	nats    *natsFlags
	attempt int
	json    bool
}

// followLogs prints a run's lines so far, then each new one, until the run has ended: through a
// server's API, or over a cluster's NATS.
func followLogs(ctx context.Context, out io.Writer, ref, task string, o logsFollow) error {
	enc := json.NewEncoder(out)
	print := func(b event.LogBatch) error {
		if o.attempt > 0 && b.Attempt != o.attempt {
			return nil
		}
		for _, l := range b.Lines {
			if err := printLogLine(out, enc, o.json, logJSON{RunID: b.RunID, Task: b.Task, Attempt: b.Attempt,
				Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time.UTC()}); err != nil {
				return err
			}
		}
		return nil
	}
	api, _, err := o.api.server(ctx)
	if err != nil {
		return err
	}
	if api != nil {
		id, err := resolveRunRefIn(ctx, apiRuns{api}, ref)
		if err != nil {
			return err
		}
		return api.FollowLogs(ctx, id, task, print)
	}
	natsURL, err := o.nats.URL()
	if err != nil {
		return err
	}
	if natsURL == "" {
		return usageError(fmt.Errorf("ork logs -f follows a run live on a server (--api, or the ork serve of this folder) or a cluster (--nats); without -f it prints what the database holds"))
	}
	if !isFullRunID(ref) {
		return usageError(fmt.Errorf("ork logs -f --nats needs a whole run id, and %q is not one", ref))
	}
	stack := stackFlags{nats: *o.nats}
	b, _, _, closeFn, err := stack.openBus(ctx, false)
	if err != nil {
		return err
	}
	defer closeFn()
	return client.New(b).FollowLogs(ctx, client.LogsParams{RunID: ref, Task: task},
		func(_ uint64, lb event.LogBatch) error { return print(lb) })
}
