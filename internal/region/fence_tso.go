//go:build amd64 || 386

package region

// ReadFence orders a sequence-validated reader's plain loads of map bytes
// before its second load of the sequence word. amd64 and 386 never reorder
// loads with loads, so nothing is needed here.
func ReadFence() {}

// StoreRelease32 stores v to *p with release ordering: every earlier load
// and store of this goroutine is visible before it. On these total-store-order
// CPUs every aligned store has release semantics, so a plain store (which
// the Go compiler keeps in program order with other memory operations)
// suffices, where atomic.StoreUint32 would issue a full-barrier XCHG. Used
// only for region words, which other processes may map; readers use atomic
// loads.
func StoreRelease32(p *uint32, v uint32) { *p = v }

// StoreRelease64 is StoreRelease32 for an 8-byte-aligned word; the store is
// a single instruction, so readers never see half of it.
func StoreRelease64(p *uint64, v uint64) { *p = v }
