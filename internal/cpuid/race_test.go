//go:build race

package cpuid

// raceEnabled: under the race detector sync.Pool drops entries at random,
// so identities are not stable there (only cheaper than a system call).
const raceEnabled = true
