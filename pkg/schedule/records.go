package schedule

import "time"

// The records of the schedules bucket (event.BucketSchedules). A scheduler writes StateKey; clients
// write ControlKey and RequestKey, which that scheduler watches, so a pause, a resume, a trigger or a
// backfill takes effect at once, without a restart.

// StateKey is the key of a workflow's State.
func StateKey(workflow string) string { return "state." + workflow }

// ControlKey is the key of a workflow's Control.
func ControlKey(workflow string) string { return "ctl." + workflow }

// RequestKey is the key of one Request.
func RequestKey(workflow, id string) string { return "req." + workflow + "." + id }

// Control is a pause or a resume asked for by a client. It holds for the workflow version it was
// given on (Hash): applying another version goes back to the version's own `paused`.
type Control struct {
	Paused bool      `json:"paused"`
	Hash   string    `json:"hash"`
	At     time.Time `json:"at"`
	By     string    `json:"by,omitempty"`
}

// Request kinds.
const (
	RequestTrigger  = "trigger"
	RequestBackfill = "backfill"
)

// Request is a trigger (one run now, nominal time At) or a backfill (the ticks in [From, To] under
// Overlap) asked for by a client; the scheduler handles it once and deletes it.
type Request struct {
	Kind    string    `json:"kind"`
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Overlap string    `json:"overlap,omitempty"`
	At      time.Time `json:"at"`
	By      string    `json:"by,omitempty"`
}

// Paused tells whether a schedule of the version hash is paused, given its spec and the last
// control (nil when none).
func Paused(spec *Spec, hash string, ctl *Control) bool {
	if ctl != nil && ctl.Hash == hash {
		return ctl.Paused
	}
	return spec.Paused
}
