package kbpf

import (
	"testing"

	"github.com/cilium/ebpf"
)

func TestLoopCostPeekAndPushPop(t *testing.T) {
	Need(t)
	bl, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 1024, MapExtra: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	for i := uint32(0); i < 1024; i++ {
		if err := bl.Update(nil, i, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	d, err := LoopCost(bl, OpPeek, 1024, 1<<16)
	if err != nil || d <= 0 {
		t.Fatalf("peek: %v %v", d, err)
	}
	q, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	d2, err := LoopCost(q, OpPushPop, 1024, 1<<16)
	if err != nil || d2 <= 0 {
		t.Fatalf("push+pop: %v %v", d2, err)
	}
	t.Log(d, d2)
	// A probe that was never pushed fails the run: the measured loop is
	// checked, not assumed.
	empty, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.BloomFilter, ValueSize: 4, MaxEntries: 1024, MapExtra: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if _, err := LoopCost(empty, OpPeek, 1024, 16); err == nil {
		t.Fatal("peek of an empty bloom filter reported success")
	}
}
