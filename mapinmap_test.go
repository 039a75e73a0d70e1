//go:build linux

package bpfmap_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap"
)

func mapID(t *testing.T, m *bpfmap.Map) ebpf.MapID {
	t.Helper()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	return id
}

func TestMapInMapAPI(t *testing.T) {
	opts := bpfmap.MapOptions{Namespace: t.TempDir()}
	innerSpec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	for _, typ := range []ebpf.MapType{ebpf.ArrayOfMaps, ebpf.HashOfMaps} {
		t.Run(typ.String(), func(t *testing.T) {
			outer, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: typ, KeySize: 4, MaxEntries: 4, InnerMap: innerSpec}, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer outer.Close()
			if outer.ValueSize() != 4 {
				t.Fatalf("value size %d", outer.ValueSize())
			}
			inner, err := bpfmap.NewMapWithOptions(innerSpec, opts)
			if err != nil {
				t.Fatal(err)
			}
			id := mapID(t, inner)
			wantErr(t, "put inner", inner.Put(uint32(1), uint64(11)))
			wantErr(t, "put map", outer.Put(uint32(2), inner))
			wantErr(t, "close inner", inner.Close())

			var got uint32
			wantErr(t, "lookup id", outer.Lookup(uint32(2), &got))
			if ebpf.MapID(got) != id {
				t.Fatalf("lookup returned id %d, inner is %d", got, id)
			}
			var m *bpfmap.Map
			wantErr(t, "lookup **Map", outer.Lookup(uint32(2), &m))
			if mapID(t, m) != id {
				t.Fatalf("opened map %d, want %d", mapID(t, m), id)
			}
			var v uint64
			wantErr(t, "inner contents", m.Lookup(uint32(1), &v))
			if v != 11 {
				t.Fatalf("inner value %d", v)
			}
			m.Close()

			wantErr(t, "lookup empty", outer.Lookup(uint32(0), &got), ebpf.ErrKeyNotExist)
			wantErr(t, "lookup empty **Map", outer.Lookup(uint32(0), &m), ebpf.ErrKeyNotExist)
			wantErr(t, "lookup and delete", outer.LookupAndDelete(uint32(2), &got), ebpf.ErrNotSupported)

			wrong, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 5}, opts)
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, "incompatible inner", outer.Put(uint32(1), wrong), unix.EINVAL)
			wrong.Close()
			private, err := bpfmap.NewMapWithOptions(innerSpec, bpfmap.MapOptions{Private: true})
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, "private inner", outer.Put(uint32(1), private), unix.EINVAL)
			private.Close()

			// The slot keeps the map; NewMapFromID reaches it.
			again, err := bpfmap.NewMapFromIDWithOptions(id, opts)
			wantErr(t, "open by id while in a slot", err)
			again.Close()
			wantErr(t, "delete", outer.Delete(uint32(2)))
			_, err = bpfmap.NewMapFromIDWithOptions(id, opts)
			wantErr(t, "open by id after the slot let go", err, ebpf.ErrKeyNotExist)
			if typ == ebpf.ArrayOfMaps {
				wantErr(t, "noexist", outer.Update(uint32(0), inner, ebpf.UpdateNoExist), unix.EINVAL)
				wantErr(t, "past the end", outer.Put(uint32(4), inner), unix.E2BIG)
			}
		})
	}
}

func TestMapInMapTemplateOption(t *testing.T) {
	opts := bpfmap.MapOptions{Namespace: t.TempDir()}
	tmpl, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 16}, opts)
	if err != nil {
		t.Fatal(err)
	}
	o := opts
	o.InnerMap = tmpl
	outer, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, MaxEntries: 2}, o)
	tmpl.Close() // only its metadata is kept
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	inner, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 99}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	wantErr(t, "hash inner with other max_entries", outer.Put(uint32(1), inner))
	wantErr(t, "noexist on present", outer.Update(uint32(1), inner, ebpf.UpdateNoExist), ebpf.ErrKeyExist)
	_, err = bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, MaxEntries: 2}, opts)
	wantErr(t, "no template", err, unix.EINVAL)
	_, err = bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, MaxEntries: 2,
		InnerMap: &ebpf.MapSpec{Type: ebpf.HashOfMaps, KeySize: 4, MaxEntries: 2,
			InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}}}, opts)
	wantErr(t, "template is a map-in-map", err, unix.EINVAL)
}

func TestMapInMapPrivate(t *testing.T) {
	opts := bpfmap.MapOptions{Private: true}
	spec := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	outer, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, MaxEntries: 2, InnerMap: spec}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Close()
	inner, err := bpfmap.NewMapWithOptions(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "put", inner.Put(uint32(0), uint64(5)))
	wantErr(t, "put map", outer.Put(uint32(1), inner))
	inner.Close()
	var m *bpfmap.Map
	wantErr(t, "lookup **Map", outer.Lookup(uint32(1), &m))
	var v uint64
	wantErr(t, "inner lookup", m.Lookup(uint32(0), &v))
	if v != 5 {
		t.Fatalf("value %d", v)
	}
	m.Close()
}
