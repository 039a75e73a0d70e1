//go:build amd64 || 386

package region

// ReadFence orders a sequence-validated reader's plain loads of map bytes
// before its second load of the sequence word. amd64 and 386 never reorder
// loads with loads, so nothing is needed here.
func ReadFence() {}
