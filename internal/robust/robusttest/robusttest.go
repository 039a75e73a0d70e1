// Package robusttest owns what the map families' repair tests share: a
// robust.Host under which this process is token Self and every other
// token is a dead process, and a lock word held by such a dead process, so
// a test can lay out by hand the state a killed writer leaves.
package robusttest

import "github.com/bpfmap/bpfmap/internal/robust"

// Self is the token of the process under test; Dead names a process that
// no longer runs.
const (
	Self = 5
	Dead = 7
)

// DeadWord is a lock word held by the dead process Dead.
const DeadWord = robust.Locked | Dead<<2

// Host is a robust.Host for tests: this process is Self, and every other
// token is dead.
type Host struct{}

// Token returns Self.
func (Host) Token() uint32 { return Self }

// Alive reports whether tok is Self.
func (Host) Alive(tok uint32) bool { return tok == Self }
