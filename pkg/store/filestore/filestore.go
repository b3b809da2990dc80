package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/ork-go/ork/pkg/store"
)

// Directory names under the base directory.
const (
	dirWorkflows   = "workflows"
	dirVersions    = "workflow_versions"
	dirRuns        = "runs"
	dirKeys        = "idempotency_keys"
	dirSlots       = "scheduled_for"
	dirTasks       = "tasks"
	dirAttempts    = "attempts"
	dirLogs        = "logs"
	dirDeadLetters = "dead_letters"
	dirTokens      = "api_tokens"
	lockFile       = ".lock"
	nextFile       = ".next"
)

// Default page sizes of the list queries (see store's Params docs).
const (
	RunListLimitDefault        = 50
	DeadLetterListLimitDefault = 100
)

// Store is a store.Store on a directory of JSON files.
type Store struct {
	base string
	// mu orders this process's readers and writers; the flock on base/.lock orders processes.
	mu sync.RWMutex
	// writeLock is the exclusive flock, used under mu's write lock only.
	writeLock *flock.Flock
}

// Open opens (creating it if needed) the file store rooted at dir.
func Open(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening file store: no directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening file store %s: %w", dir, err)
	}
	for _, d := range []string{dirWorkflows, dirVersions, dirRuns, dirKeys, dirSlots, dirTasks, dirAttempts, dirLogs, dirDeadLetters, dirTokens} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o750); err != nil {
			return nil, fmt.Errorf("opening file store %s: %w", dir, err)
		}
	}
	return &Store{base: abs, writeLock: flock.New(filepath.Join(abs, lockFile), flock.SetPermissions(0o600))}, nil
}

// Close releases nothing but the lock file handle; the store holds no other resource between calls.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLock.Close()
}

// lockWrite takes the in-process and the inter-process exclusive locks.
func (s *Store) lockWrite() (unlock func(), err error) {
	s.mu.Lock()
	if err := s.writeLock.Lock(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("locking file store %s: %w", s.base, err)
	}
	return func() {
		_ = s.writeLock.Unlock()
		s.mu.Unlock()
	}, nil
}

// lockRead takes the in-process read lock and a shared inter-process lock on a handle of its own,
// since readers of one process overlap.
func (s *Store) lockRead(ctx context.Context) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading file store %s: %w", s.base, err)
	}
	s.mu.RLock()
	fl := flock.New(filepath.Join(s.base, lockFile), flock.SetPermissions(0o600))
	if err := fl.RLock(); err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("locking file store %s for reading: %w", s.base, err)
	}
	return func() {
		_ = fl.Unlock()
		s.mu.RUnlock()
	}, nil
}

// escape turns a key into a safe file name: letters, digits, '-' and '_' stay, '.' stays except in
// front, everything else becomes %XX. Distinct keys give distinct names.
func escape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_',
			c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "%"
	}
	return b.String()
}

// unescapeName reverses escape, for names read back from a directory listing.
func unescapeName(name string) string {
	if name == "%" {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '%' && i+2 < len(name) {
			if v, err := strconv.ParseUint(name[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(name[i])
	}
	return b.String()
}

// Paths of the row files.
func (s *Store) workflowPath(name string) string {
	return filepath.Join(s.base, dirWorkflows, escape(name)+".json")
}
func (s *Store) versionPath(hash string) string {
	return filepath.Join(s.base, dirVersions, escape(hash)+".json")
}
func (s *Store) runPath(id string) string { return filepath.Join(s.base, dirRuns, escape(id)+".json") }
func (s *Store) keyPath(key string) string {
	return filepath.Join(s.base, dirKeys, escape(key)+".json")
}

// slotPath is the file of a workflow's nominal time (store.NominalTime), named by the time in UTC to
// the microsecond.
func (s *Store) slotPath(workflow string, at time.Time) string {
	return filepath.Join(s.base, dirSlots, escape(workflow), at.UTC().Format(slotLayout)+".json")
}

// slotLayout names a slot file: fixed width, so a directory lists in time order, and no colon.
const slotLayout = "20060102T150405.000000Z"

func (s *Store) tasksDir(run string) string { return filepath.Join(s.base, dirTasks, escape(run)) }
func (s *Store) taskPath(run, task string) string {
	return filepath.Join(s.tasksDir(run), escape(task)+".json")
}
func (s *Store) attemptsDir(run, task string) string {
	return filepath.Join(s.base, dirAttempts, escape(run), escape(task))
}
func (s *Store) attemptPath(run, task string, attempt int) string {
	return filepath.Join(s.attemptsDir(run, task), strconv.Itoa(attempt)+".json")
}
func (s *Store) logPath(run, task string, attempt int) string {
	return filepath.Join(s.base, dirLogs, escape(run), escape(task), strconv.Itoa(attempt)+".jsonl")
}
func (s *Store) deadLetterPath(stream string, seq uint64) string {
	return filepath.Join(s.base, dirDeadLetters, escape(stream)+"."+strconv.FormatUint(seq, 10)+".json")
}
func (s *Store) tokenPath(id string) string {
	return filepath.Join(s.base, dirTokens, escape(id)+".json")
}

// Rows as stored. Field names follow the SQL columns.
type workflowRow struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Schedule    string    `json:"schedule"`
	CurrentHash string    `json:"current_hash"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// The registry's mirror; absent from the files of a workflow never registered.
	Registered    bool       `json:"registered,omitempty"`
	RegisteredRev uint64     `json:"registered_rev,omitempty"`
	RegisteredAt  *time.Time `json:"registered_at,omitempty"`
	RegisteredBy  string     `json:"registered_by,omitempty"`
}

type versionRow struct {
	Hash      string          `json:"hash"`
	Workflow  string          `json:"workflow"`
	Plan      json.RawMessage `json:"plan"`
	CreatedAt time.Time       `json:"created_at"`
}

type runRow struct {
	ID             string          `json:"id"`
	Workflow       string          `json:"workflow"`
	WorkflowHash   string          `json:"workflow_hash"`
	Status         string          `json:"status"`
	TriggeredBy    string          `json:"triggered_by"`
	Params         json.RawMessage `json:"params,omitempty"`
	RerunOf        string          `json:"rerun_of,omitempty"`
	ScheduledFor   *time.Time      `json:"scheduled_for,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Error          string          `json:"error"`
	TaskCount      int             `json:"task_count"`
	CreatedAt      time.Time       `json:"created_at"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
}

// keyRow is the run an idempotency key or a slot (a workflow's nominal time) belongs to.
type keyRow struct {
	RunID string `json:"run_id"`
}

type taskRow struct {
	RunID          string          `json:"run_id"`
	Name           string          `json:"name"`
	Index          int             `json:"idx"`
	Executor       string          `json:"executor"`
	DependsOn      []string        `json:"depends_on"`
	Status         string          `json:"status"`
	Attempt        int             `json:"attempt"`
	MaxRetries     int             `json:"max_retries"`
	TimeoutSeconds int             `json:"timeout_s"`
	Output         json.RawMessage `json:"output,omitempty"`
	Error          string          `json:"error"`
	Reason         string          `json:"reason"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
}

type attemptRow struct {
	RunID        string     `json:"run_id"`
	Task         string     `json:"task"`
	Attempt      int        `json:"attempt"`
	Status       string     `json:"status"`
	Instance     string     `json:"instance"`
	ExitCode     *int       `json:"exit_code,omitempty"`
	Error        string     `json:"error"`
	Reason       string     `json:"reason"`
	DurationMS   int64      `json:"duration_ms"`
	DispatchedAt *time.Time `json:"dispatched_at,omitempty"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
}

type logRow struct {
	Seq    int64     `json:"seq"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
	Time   time.Time `json:"ts"`
}

type deadLetterRow struct {
	ID        int64     `json:"id"`
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Subject   string    `json:"subject"`
	Reason    string    `json:"reason"`
	Data      []byte    `json:"data"`
	CreatedAt time.Time `json:"created_at"`
}

type tokenRow struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Scope      string     `json:"scope"`
	SecretHash []byte     `json:"secret_hash"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// readJSON decodes the file at path into v; found is false when the file does not exist.
func readJSON(path string, v any) (found bool, err error) {
	data, err := os.ReadFile(path) //nolint:gosec // paths are built from escaped keys under the base directory
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", path, err)
	}
	return true, nil
}

// writeTemp writes data to a new temporary file next to path and returns its name. It is not synced:
// the caller flushes every file of a batch at once, then renames.
func writeTemp(path string, data []byte) (string, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return tmp.Name(), nil
}

// appendLines appends data (whole lines) to path, unsynced like writeTemp. A torn last line left by
// a crash is closed with a newline first, so it cannot swallow the new first line.
func appendLines(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600) //nolint:gosec // escaped path under base
	if err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			data = append([]byte{'\n'}, data...)
		}
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("appending to %s: %w", path, err)
	}
	return nil
}

// readLogs returns the lines of one attempt's log file, first line of each seq wins, in seq order.
func readLogs(path string) ([]logRow, error) {
	data, err := os.ReadFile(path) //nolint:gosec // escaped path under base
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	seen := map[int64]bool{}
	var rows []logRow
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		var r logRow
		if len(line) == 0 || json.Unmarshal(line, &r) != nil || seen[r.Seq] {
			continue // empty, torn by a crash, or a replay
		}
		seen[r.Seq] = true
		rows = append(rows, r)
	}
	return rows, nil
}

var _ store.Store = (*Store)(nil)
