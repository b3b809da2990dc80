//go:build race

package executor

// raceEnabled tells tests that the race detector multiplies memory use.
const raceEnabled = true
