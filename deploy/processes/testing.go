package processes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestDatabase creates a fresh database named prefix_<random> on the server of admin for tb and
// drops it when tb ends.
func TestDatabase(tb testing.TB, admin, prefix string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		tb.Fatal(err)
	}
	name := prefix + "_" + hex.EncodeToString(suffix)
	dbURL, err := CreateDatabase(ctx, admin, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := DropDatabase(ctx, admin, name); err != nil {
			tb.Errorf("dropping test database: %v", err)
		}
	})
	return dbURL
}

// BuildOnce builds the binaries of a test package once, however many tests ask for them.
type BuildOnce struct {
	once sync.Once
	bins Binaries
	err  error
}

// Binaries builds (the first time) and returns the binaries of cfg; cfg.Root empty means the
// workspace holding the current directory.
func (b *BuildOnce) Binaries(tb testing.TB, cfg BuildConfig) Binaries {
	tb.Helper()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		if cfg.Root == "" {
			if cfg.Root, b.err = FindRoot("."); b.err != nil {
				return
			}
		}
		b.bins, b.err = BuildBinaries(ctx, cfg)
	})
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.bins
}

// EnvTimeScale names the factor by which the multi-process tests stretch their deadlines (not their
// fault timings): ORK_TEST_TIME_SCALE=3 on a machine three times slower or busier than the 2-core
// reference. Unset, empty or unparsable means 1; values below 1 are raised to 1.
const EnvTimeScale = "ORK_TEST_TIME_SCALE"

// TimeScale returns the factor of EnvTimeScale.
func TimeScale() float64 {
	f, err := strconv.ParseFloat(os.Getenv(EnvTimeScale), 64)
	if err != nil || f < 1 {
		return 1
	}
	return f
}

// Scaled stretches a test deadline by TimeScale.
func Scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * TimeScale()) }
