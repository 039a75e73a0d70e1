package bpfmap

import "github.com/bpfmap/bpfmap/internal/marshal"

// fastKey and fastValue are the inlined first step of the hot paths for the
// shape most BPF map keys and values take — a pointer to a 4-byte key and to
// an 8-byte value (a u32 index or address and a u64 counter) — viewed
// without a call. Everything else goes through internal/marshal.
func fastKey(key any, size uint32) ([]byte, bool) {
	if p, ok := key.(*uint32); ok && p != nil && size == 4 {
		return marshal.Uint32Bytes(p), true
	}
	return nil, false
}

// fastBytesKey is fastKey's second chance: a key given as its bytes (LPM
// and composite keys). It is a function of its own so that both inline.
func fastBytesKey(key any, size uint32) ([]byte, bool) {
	if b, ok := key.([]byte); ok && b != nil && uint32(len(b)) == size {
		return marshal.HideBytes(b), true
	}
	return nil, false
}

func fastValue(v any, size int) ([]byte, bool) {
	if p, ok := v.(*uint64); ok && p != nil && size == 8 {
		return marshal.Uint64Bytes(p), true
	}
	return nil, false
}
