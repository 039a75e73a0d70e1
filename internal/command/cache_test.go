//go:build linux

package command

import (
	"sync"
	"testing"

	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// TestOpenIDWhileClosing opens a live map by id from many goroutines while
// others close their handles, so that the process's last handle keeps
// closing while new ones are opened: every open must succeed (the map is
// held by the creator's handle throughout), never seeing the closing Map
// as gone.
func TestOpenIDWhileClosing(t *testing.T) {
	ns, err := namespace.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 8, MaxEntries: 4}
	h, err := Create(a, Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := h.Info()
	// A pin keeps the object alive while this process drops every handle.
	if _, err := h.Pin("m"); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				o, err := OpenID(ns, info.ID, 0)
				if err != nil {
					errs <- err
					return
				}
				_ = o.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("OpenID of a pinned map while its Map closes: %v", err)
	}
}
