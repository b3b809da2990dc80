package faults_test

import (
	"context"
	"testing"
	"time"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

// TestNATSClusterFailover runs the stack on three nats-servers clustered over loopback, every stream
// and the run-state bucket at three replicas. The leader of ORK_EVENTS is SIGKILLed mid-run and
// restarted; later another node is SIGKILLed: with one node of three down the runs go on. Then a
// second node goes down too: without a quorum nothing is accepted, and once a node returns the runs
// resume. Every run ends, nothing is lost or doubled, and no service is restarted: the clients fail
// over on their own.
func TestNATSClusterFailover(t *testing.T) {
	t.Parallel()
	e := setup(t, options{natsCluster: 3, executors: 2, concurrency: 3, ackWait: 2 * time.Second})
	nodes := e.s.NATSNodes
	byName := make(map[string]*processes.NATS, len(nodes))
	for _, n := range nodes {
		byName[n.ServerName()] = n
	}
	leaderOf := func(stream string) *processes.NATS {
		t.Helper()
		var leader *processes.NATS
		e.waitUntil("a leader of "+stream, func() bool {
			ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
			defer cancel()
			st, err := e.bus.JS.Stream(ctx, stream)
			if err != nil {
				return false
			}
			info, err := st.Info(ctx)
			if err != nil || info.Cluster == nil {
				return false
			}
			leader = byName[info.Cluster.Leader]
			return leader != nil
		})
		return leader
	}
	for _, name := range []string{"wide-1", "wide-2", "wide-3"} {
		e.submit(e.wide("cluster-"+name, 15, 0.2, 2))
	}
	e.submit(e.workflow("cluster-chain", []taskSpec{
		{name: "a", seconds: 0.5, lines: 2}, {name: "b", deps: []string{"a"}, seconds: 0.5, lines: 2},
		{name: "c", deps: []string{"b"}, seconds: 0.5, lines: 2},
	}))

	// The leader of ORK_EVENTS dies mid-run and comes back.
	e.waitExecutions(10)
	leader := leaderOf(event.StreamEvents)
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s, leader of %s, killed after 10 executions", leader.ServerName(), event.StreamEvents)
	e.waitExecutions(20) // progress with one node of three down
	if err := leader.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted", leader.ServerName())

	// Another node dies: the runs go on.
	other := nodes[0]
	if other == leader {
		other = nodes[1]
	}
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s killed", other.ServerName())
	e.waitExecutions(30)

	// A second node down: no quorum, so no run is accepted, until a node returns.
	var third *processes.NATS
	for _, n := range nodes {
		if n != other && third == nil {
			third = n
		}
	}
	if err := third.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s killed too: one node of three left", third.ServerName())
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	_, err := e.client.Submit(ctx, client.SubmitParams{Plan: e.wide("cluster-refused", 1, 0, 1), TriggeredBy: "test"})
	cancel()
	if err == nil {
		t.Fatal("a submission was accepted with two nodes of three down")
	}
	t.Logf("submission with two nodes down refused: %v", err)
	if err := other.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s restarted: two nodes of three up", other.ServerName())
	var id string
	e.waitUntil("a submission to be accepted again", func() bool {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		plan := e.wide("cluster-after", 3, 0.1, 1)
		id, err = e.client.Submit(ctx, client.SubmitParams{Plan: plan, TriggeredBy: "test"})
		if err == nil {
			e.accept(id, plan.Name)
		}
		return err == nil
	})
	if err := third.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	rep := e.check(faults.Params{EveryTaskWritesLedger: true})
	if rep.RunStatus[event.RunSuccess] != rep.Runs {
		t.Errorf("not every run succeeded: %v", rep.RunStatus)
	}
	if exited := e.s.Exited(); len(exited) > 0 {
		t.Errorf("services exited during the node failures: %v", exited[0].Name())
	}
}
