package recorder_test

import (
	"fmt"
	"testing"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/services/recorder"
)

// benchEvents is how many events one benchmark iteration records.
const benchEvents = 20_000

// BenchmarkRecorderSQLite measures the recorder end to end on SQLite: 20,000 events of complete
// runs are in ORK_EVENTS (file storage) before the recorder starts; the clock runs from its start
// until every event is committed and acknowledged. It reports events/s.
func BenchmarkRecorderSQLite(b *testing.B) { benchRecorder(b, openSQLite) }

// BenchmarkRecorderPostgres is BenchmarkRecorderSQLite on PostgreSQL (TEST_DATABASE_URL).
func BenchmarkRecorderPostgres(b *testing.B) { benchRecorder(b, openPostgres) }

func benchRecorder(b *testing.B, open opener) {
	f := setup(b)
	st := open(b)
	p := testPlan("bench", func() []string {
		names := make([]string, 32)
		for i := range names {
			names[i] = fmt.Sprintf("t%02d", i)
		}
		return names
	}()...)
	perRun := len(runEvents("x", p))
	runs := benchEvents / perRun
	total, committed := 0, 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		msgs := make([]bus.Msg, 0, runs*perRun)
		for range runs {
			msgs = append(msgs, eventMsgs(b, runEvents(event.NewID(), p)...)...)
		}
		f.publish(msgs...)
		total += len(msgs)
		b.StartTimer()
		stop := f.start(st, recorder.Config{})
		f.waitCommitted(event.StreamEvents, total)
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatalf("recorder: %v", err)
		}
		committed = total
		b.StartTimer()
	}
	b.ReportMetric(float64(committed)/b.Elapsed().Seconds(), "events/s")
}
