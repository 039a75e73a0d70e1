// Package jhash implements the two Bob Jenkins lookup3 hashes the kernel's BPF
// maps use to place keys: jhash over bytes and jhash2 over 32-bit words. The
// hash map picks its bucket and the bloom filter its bits with them, so with a
// zero seed bpfmap's iteration order and filter answers equal the kernel's.
//
// Written from the public-domain lookup3 description (see
// ../shared/kernel-semantics.md, Appendix A), not from kernel source.
package jhash

import (
	"encoding/binary"
	"math/bits"
)

// initval is lookup3's arbitrary starting constant as the kernel uses it.
const initval = 0xdeadbeef

// mix is lookup3's reversible mixing of three words.
func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// final is lookup3's final avalanche of three words into c.
func final(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}

// Bytes is the kernel's jhash(key, length, initval) over k, reading words in
// little-endian order (the kernel reads them in host order; bpfmap models
// little-endian hosts, which is every platform the kernel's maps are compared
// with here).
func Bytes(k []byte, seed uint32) uint32 {
	n := len(k)
	a := initval + uint32(n) + seed
	b, c := a, a
	for n > 12 {
		a += binary.LittleEndian.Uint32(k[0:])
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = mix(a, b, c)
		k = k[12:]
		n -= 12
	}
	if n == 0 {
		return c
	}
	var tail [12]byte
	copy(tail[:], k)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	return final(a, b, c)
}

// Words is the kernel's jhash2(k, length/4, initval): the same hash over a
// key whose size is a multiple of four, read as native (little-endian) u32
// words. len(k) must be a multiple of 4.
func Words(k []byte, seed uint32) uint32 {
	n := len(k) / 4
	a := initval + uint32(n)<<2 + seed
	b, c := a, a
	for n > 3 {
		a += binary.LittleEndian.Uint32(k[0:])
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = mix(a, b, c)
		k = k[12:]
		n -= 3
	}
	switch n {
	case 3:
		c += binary.LittleEndian.Uint32(k[8:])
		fallthrough
	case 2:
		b += binary.LittleEndian.Uint32(k[4:])
		fallthrough
	case 1:
		a += binary.LittleEndian.Uint32(k[0:])
		return final(a, b, c)
	}
	return c
}

// Word is Words for a single 32-bit word: the hot path of 4-byte keys.
func Word(w, seed uint32) uint32 {
	a := initval + 4 + seed
	return final(a+w, a, a)
}

// Key hashes a map key the way the kernel's hash maps and bloom filter do:
// jhash2 when the size is a multiple of four, jhash otherwise.
func Key(k []byte, seed uint32) uint32 {
	if len(k) == 4 {
		return Word(binary.LittleEndian.Uint32(k), seed)
	}
	if len(k)%4 == 0 {
		return Words(k, seed)
	}
	return Bytes(k, seed)
}
