//go:build race

package collector

// raceEnabled: the race detector's runtime allocates on its own, so a
// process-wide malloc count over seconds is not the code's.
const raceEnabled = true
