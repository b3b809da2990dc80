package faults_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

var (
	chaosDuration = flag.Duration("chaos.duration", time.Minute, "how long TestChaos submits runs and injects faults, per seed")
	chaosSeed     = flag.Uint64("chaos.seed", 0, "replay this seed of TestChaos's random choices instead of the fixed list")
	chaosRandom   = flag.Bool("chaos.random", false, "run TestChaos with a random seed (printed, to replay) instead of the fixed list")
)

// chaosSeeds are the seeds every `go test` (and so `make test`) replays: each one that ever found a
// defect, then a few that did not. A seed fixes the choice and order of the faults and their spacing;
// the timing of the processes still varies, so a replay is likely, not certain, to hit the same
// interleaving. A seed that finds a new defect goes here with a line on what it found.
var chaosSeeds = []struct {
	seed  uint64
	found string
}{
	{16879355522013959892, "a scheduler killed between writing a run's final state and publishing run.finished left the run running forever (docs/reliability.md)"},
	{9532456451787501467, "a lost report and the attempt's real result applied in different orders by the scheduler and the recorder"},
	{11949877356195205943, "events dead-lettered as orphans after recorder crashes"},
	{16356741543703630300, ""},
	{7666680268275583137, ""},
	{17330289996030144, ""},
}

// timeline records what the chaos test did, with the time since its start.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (tl *timeline) add(format string, args ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.lines = append(tl.lines, fmt.Sprintf("%7.2fs  %s", time.Since(tl.start).Seconds(), fmt.Sprintf(format, args...)))
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return strings.Join(tl.lines, "\n")
}

// TestChaos runs NATS, a PostgreSQL database, the recorder, two schedulers and three executors
// under a random stream of faults (SIGKILL and restart of executors, schedulers and the recorder;
// SIGSTOP/SIGCONT of each; one NATS restart) while runs are submitted for -chaos.duration; then
// it waits for every accepted run to end and checks the invariant. It prints a timeline of what it
// did and what it found. `make chaos` runs it for longer.
func TestChaos(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("chaos runs for -chaos.duration per seed; skipped in -short mode")
	}
	switch {
	case *chaosSeed != 0:
		chaos(t, *chaosSeed)
	case *chaosRandom:
		chaos(t, rand.Uint64())
	default:
		for _, s := range chaosSeeds {
			t.Run(strconv.FormatUint(s.seed, 10), func(t *testing.T) {
				t.Parallel()
				if s.found != "" {
					t.Logf("this seed found: %s", s.found)
				}
				chaos(t, s.seed)
			})
		}
	}
}

// chaos is one TestChaos run with one seed.
func chaos(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	replay := fmt.Sprintf("cd deploy && TEST_DATABASE_URL=%q go test -count=1 -v -run '^TestChaos$' ./faults -chaos.seed=%d -chaos.duration=%s",
		adminURL(t), seed, *chaosDuration)
	t.Logf("chaos: duration %s, seed %d, time scale %g; replay with:\n  %s", *chaosDuration, seed, processes.TimeScale(), replay)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chaos seed %d failed; replay with:\n  %s", seed, replay)
		}
	})

	// Executors are killed or stopped past their 2 s AckWait every few seconds, so the 3 s task can
	// lose attempt after attempt; the default cap of 3 lost attempts would fail it by design. The
	// test asks every run to succeed, so the cap is raised.
	e := setup(t, options{executors: 3, concurrency: 2, schedulers: 2, ackWait: 2 * time.Second,
		schedulerArgs: append(slices.Clone(schedulerTestArgs), "--max-lost-attempts", "50"),
		timeout:       *chaosDuration + processes.Scaled(6*time.Minute)})
	tl := &timeline{start: time.Now()}
	plans := []*workflow.Plan{
		e.workflow("chaos-chain", []taskSpec{
			{name: "a", seconds: 0.2, lines: 2},
			{name: "b", deps: []string{"a"}, seconds: 0.5, lines: 2},
			{name: "c", deps: []string{"b"}, seconds: 0.1, lines: 2},
		}),
		e.wide("chaos-wide", 8, 0.1, 3),
		e.workflow("chaos-long", []taskSpec{{name: "long", seconds: 3, lines: 5}, {name: "after", deps: []string{"long"}, lines: 1}}),
	}

	stop := time.Now().Add(*chaosDuration)
	var wg sync.WaitGroup
	var refused int
	wg.Add(1)
	go func() { // the submitter
		defer wg.Done()
		for i := 0; time.Now().Before(stop); i++ {
			plan := plans[i%len(plans)]
			id, err := e.client.Submit(e.ctx, client.SubmitParams{Plan: plan, TriggeredBy: "chaos"})
			if err != nil {
				refused++
				tl.add("submission of %s refused: %v", plan.Name, err)
			} else {
				e.accept(id, plan.Name)
			}
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(time.Duration(300+rand.IntN(500)) * time.Millisecond):
			}
		}
	}()

	// The fault injector, in this goroutine: one fault every 1-3 s, the NATS restart half-way.
	natsRestarted := false
	var unexpected []string
	for time.Now().Before(stop) {
		select {
		case <-e.ctx.Done():
			t.Fatal(e.ctx.Err())
		case <-time.After(time.Duration(1000+rng.IntN(2000)) * time.Millisecond):
		}
		for _, p := range e.s.Exited() {
			unexpected = append(unexpected, p.Name())
			tl.add("FOUND %s exited by itself: %v; restarting it", p.Name(), p.Err())
			if _, err := e.s.Restart(p); err != nil {
				t.Fatal(err)
			}
		}
		if !natsRestarted && time.Until(stop) < *chaosDuration/2 {
			natsRestarted = true
			if err := e.s.NATS.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := e.s.NATS.Restart(e.ctx); err != nil {
				t.Fatal(err)
			}
			tl.add("nats-server killed (SIGKILL) and restarted")
			continue
		}
		services := e.s.Services()
		victim := services[rng.IntN(len(services))]
		if rng.IntN(2) == 0 {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			if _, err := e.s.Restart(victim); err != nil {
				t.Fatal(err)
			}
			tl.add("%s killed (SIGKILL) and restarted", victim.Name())
			continue
		}
		pause := time.Duration(500+rng.IntN(4500)) * time.Millisecond
		if err := victim.Pause(); err != nil {
			t.Fatal(err)
		}
		tl.add("%s stopped (SIGSTOP) for %s", victim.Name(), pause.Round(time.Millisecond))
		select {
		case <-e.ctx.Done():
			t.Fatal(e.ctx.Err())
		case <-time.After(pause):
		}
		if err := victim.Resume(); err != nil {
			t.Fatal(err)
		}
		tl.add("%s continued (SIGCONT)", victim.Name())
	}
	wg.Wait()
	for _, p := range e.s.Exited() {
		unexpected = append(unexpected, p.Name())
		tl.add("FOUND %s exited by itself: %v; restarting it", p.Name(), p.Err())
		if _, err := e.s.Restart(p); err != nil {
			t.Fatal(err)
		}
	}
	tl.add("faults and submissions stopped: %d runs accepted, %d refused; waiting for every run to end", len(e.accepted()), refused)

	rep := e.check(faults.Params{EveryTaskWritesLedger: true, Deadline: processes.Scaled(3 * time.Minute)})
	tl.add("check: %s", rep)
	if rep.RunStatus[event.RunSuccess] != rep.Runs {
		t.Errorf("not every run succeeded: %v (every fault here is recoverable)", rep.RunStatus)
	}
	if len(unexpected) > 0 {
		t.Errorf("services exited by themselves: %v", unexpected)
	}
	t.Logf("chaos timeline:\n%s", tl)
}
