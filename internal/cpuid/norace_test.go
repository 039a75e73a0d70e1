//go:build !race

package cpuid

const raceEnabled = false
