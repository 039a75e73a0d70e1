//go:build !linux

package namespace

import (
	"errors"

	"github.com/bpfmap/bpfmap/internal/region"
)

// ErrUnsupported: sharing maps between processes needs Linux (flock,
// open-file-description locks, MADV_REMOVE); elsewhere maps are private to
// their process, and no NS can be opened.
var ErrUnsupported = errors.New("bpfmap: maps shared between processes need Linux")

// MaxProcs is the number of process slots (see the Linux implementation).
const MaxProcs = region.AttachWords * 64

// TokenBits is the width of owner tokens.
const TokenBits = 30

// NS is a pin namespace; none can be opened on this platform, so no method
// below is ever reached.
type NS struct{ root string }

func open(string) (*NS, error) { return nil, ErrUnsupported }
func (ns *NS) close()          {}

// Object is a process's hold on a map object (never made here).
type Object struct{}

// The methods below exist so that callers build everywhere; without an NS
// they cannot be called.

func (ns *NS) Create(int64) (*Object, error)              { return nil, ErrUnsupported }
func (ns *NS) OpenID(uint32) (*Object, error)             { return nil, ErrUnsupported }
func (ns *NS) OpenPin(string) (*Object, error)            { return nil, ErrUnsupported }
func (ns *NS) NextID(uint32) (uint32, error)              { return 0, ErrUnsupported }
func (ns *NS) ReserveID() uint32                          { return 0 }
func (ns *NS) StaleIDs() []uint32                         { return nil }
func (ns *NS) Slot() int                                  { return 0 }
func (ns *NS) SlotAlive(int) bool                         { return true }
func (ns *NS) Token() uint32                              { return 1 }
func (ns *NS) Alive(uint32) bool                          { return true }
func (o *Object) ID() uint32                              { return 0 }
func (o *Object) NS() *NS                                 { return nil }
func (o *Object) FileSize() int64                         { return 0 }
func (o *Object) ReadHeader() (region.Header, error)      { return region.Header{}, ErrUnsupported }
func (o *Object) Map(uint64) (*region.Region, error)      { return nil, ErrUnsupported }
func (o *Object) Close(*region.Region) (bool, error)      { return false, ErrUnsupported }
func (o *Object) Pin(string) error                        { return ErrUnsupported }
func (o *Object) Unpin(string) error                      { return ErrUnsupported }
func (o *Object) Drop()                                   {}
func (o *Object) Discard() error                          { return ErrUnsupported }
func (o *Object) LockRecovery() func()                    { return func() {} }
func (o *Object) LockWriters() func()                     { return func() {} }
func (ns *NS) PrepareRef(uint32, *Object) (string, error) { return "", ErrUnsupported }
func (ns *NS) CommitRef(uint32, string, string) error     { return ErrUnsupported }
func (ns *NS) AbortRef(string)                            {}
func (ns *NS) DropRef(uint32, string)                     {}
func (ns *NS) RefNames(uint32) []string                   { return nil }
func (ns *NS) RefIsTo(uint32, string, uint32) bool        { return false }
func (ns *NS) RefInner(uint32, string) uint32             { return 0 }
func (ns *NS) SweepID(uint32)                             {}
func (ns *NS) DropRefs(uint32)                            {}
