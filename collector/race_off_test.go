//go:build !race

package collector

// raceEnabled: see race_on_test.go.
const raceEnabled = false
