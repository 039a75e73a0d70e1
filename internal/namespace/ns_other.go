//go:build !linux

package namespace

import (
	"errors"

	"github.com/bpfmap/bpfmap/internal/region"
)

// ErrUnsupported: sharing maps between processes needs Linux (flock,
// open-file-description locks, MADV_REMOVE); elsewhere maps are private to
// their process.
var ErrUnsupported = errors.New("bpfmap: maps shared between processes need Linux")

// MaxProcs is the number of process slots (see the Linux implementation).
const MaxProcs = region.AttachWords * 64

// TokenBits is the width of owner tokens.
const TokenBits = 30

// NS is a pin namespace; it cannot be opened on this platform.
type NS struct{ root string }

func open(string) (*NS, error) { return nil, ErrUnsupported }
func (ns *NS) close()          {}

// Object is a process's hold on a map object (never made here).
type Object struct{}
